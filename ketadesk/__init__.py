"""KetaDesk: a desktop workstation for physicians who prescribe at-home ketamine therapy."""

from importlib.metadata import PackageNotFoundError, version

APP_NAME = "KetaDesk"

try:
    __version__ = version("ketadesk")
except PackageNotFoundError:  # running from a source tree or a PyInstaller bundle
    __version__ = "0.1.0"
