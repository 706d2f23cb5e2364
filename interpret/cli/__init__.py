"""The command line (click): `interpret COMMAND`."""
