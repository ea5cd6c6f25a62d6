"""KetaDesk: a desktop workstation for physicians who prescribe at-home ketamine therapy."""

APP_NAME = "KetaDesk"
# The one place the version is written; pyproject.toml and build.spec read it from here.
__version__ = "0.1.0"
