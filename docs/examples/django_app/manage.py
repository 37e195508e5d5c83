#!/usr/bin/env python
"""Run the example: ``DJANGO_DEBUG=1 python manage.py migrate`` then
``DJANGO_DEBUG=1 python manage.py runserver`` (or set ``DJANGO_SECRET_KEY``)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
