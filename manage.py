#!/usr/bin/env python
"""Django's command-line entry point for Ephemera."""

import os
import sys

# Exit status for a setting Ephemera cannot start with (1 stays Django's own errors).
EXIT_SETTING = 2


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.core.management import execute_from_command_line

    from portal.env import SettingError

    try:
        execute_from_command_line(sys.argv)
    except SettingError as exc:
        # The message names the setting and what to set; a traceback would only bury it.
        print("ephemera:", " ".join(str(exc).splitlines()), file=sys.stderr)
        sys.exit(EXIT_SETTING)


if __name__ == "__main__":
    main()
