/*
 * stepup-codes.js: the recovery codes page's Copy and Print buttons. No build step, no
 * dependencies; loaded as a file, never inline, so a "script-src 'self'" policy lets it
 * run. Served by each integration under its prefix (<prefix>/stepup-codes.js).
 *
 * Without it the page still offers its Download link (the codes as a text file in a
 * data: URL) and the buttons stay hidden. Copy copies the same text as the file (read
 * from the link); the status line says whether it worked, and when the browser refuses,
 * the codes are selected for the person to copy themselves.
 */
(function () {
  "use strict";

  // The text of the Download link's file: everything after the data: URL's comma.
  function fileText(link) {
    var href = link.getAttribute("href") || "";
    return decodeURIComponent(href.slice(href.indexOf(",") + 1));
  }

  // Copy with the old way where the Clipboard API is missing (an http: page that is not
  // localhost): a hidden, read-only field, selected and copied.
  function copyByCommand(text) {
    var field = document.createElement("textarea");
    var focused = document.activeElement;
    field.value = text;
    field.setAttribute("readonly", "");
    field.setAttribute("aria-hidden", "true");
    field.style.position = "fixed";
    field.style.top = "0";
    field.style.opacity = "0";
    document.body.appendChild(field);
    field.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(field);
    if (focused && focused.focus) {
      focused.focus();
    }
    return copied ? Promise.resolve() : Promise.reject(new Error("stepup: copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return copyByCommand(text);
      });
    }
    return copyByCommand(text);
  }

  function wire(box) {
    var link = box.querySelector("a[download]");
    var copyButton = box.querySelector("[data-stepup-codes-copy]");
    var printButton = box.querySelector("[data-stepup-codes-print]");
    var status = document.querySelector("[data-stepup-codes-status]");
    var list = document.getElementById("stepup-recovery-codes");
    if (!link) {
      return;
    }
    function say(text) {
      if (status) {
        status.textContent = text;
      }
    }
    if (copyButton) {
      copyButton.hidden = false;
      copyButton.addEventListener("click", function () {
        say("");
        copy(fileText(link)).then(
          function () {
            say(box.getAttribute("data-copied") || "");
          },
          function () {
            if (list && window.getSelection) {
              window.getSelection().selectAllChildren(list);
            }
            say(box.getAttribute("data-copy-failed") || "");
          }
        );
      });
    }
    if (printButton && typeof window.print === "function") {
      printButton.hidden = false;
      printButton.addEventListener("click", function () {
        window.print();
      });
    }
  }

  function start() {
    var boxes = document.querySelectorAll("[data-stepup-codes]");
    for (var i = 0; i < boxes.length; i++) {
      wire(boxes[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
