/*
 * stepup-codes.js: the recovery codes page's Download, Copy and Print buttons. No build
 * step, no dependencies; loaded as a file, never inline, so a "script-src 'self'" policy
 * lets it run. Served by each integration under its prefix (<prefix>/stepup-codes.js).
 *
 * Without it the buttons stay hidden (the codes are on the page, to print or write
 * down). Download saves the page's text (data-file) as a file through a blob: URL,
 * revoked at once: a data: URL would stay in the browser's download history, the codes
 * readable in it. Copy copies the same text; the status line says whether it worked,
 * and when the browser refuses, the codes are selected for the person to copy
 * themselves.
 */
(function () {
  "use strict";

  function save(text, name) {
    var url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
    var link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.style.display = "none";
    document.body.appendChild(link);
    link.click();
    document.body.removeChild(link);
    setTimeout(function () {
      URL.revokeObjectURL(url);
    }, 0);
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
    var text = box.getAttribute("data-file");
    var downloadButton = box.querySelector("[data-stepup-codes-download]");
    var copyButton = box.querySelector("[data-stepup-codes-copy]");
    var printButton = box.querySelector("[data-stepup-codes-print]");
    var status = document.querySelector("[data-stepup-codes-status]");
    var list = document.getElementById("stepup-recovery-codes");
    if (text === null) {
      return;
    }
    function say(text) {
      if (status) {
        status.textContent = text;
      }
    }
    if (downloadButton && window.URL && URL.createObjectURL && window.Blob) {
      downloadButton.hidden = false;
      downloadButton.addEventListener("click", function () {
        save(text, box.getAttribute("data-file-name") || "recovery-codes.txt");
      });
    }
    if (copyButton) {
      copyButton.hidden = false;
      copyButton.addEventListener("click", function () {
        say("");
        copy(text).then(
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
