#!/usr/bin/env bash
# Installs the Debian/Ubuntu system libraries Qt (offscreen and X11) and the PDF tools need, and
# PostgreSQL (its server and contrib modules: pg_trgm, unaccent) for the practice-server tests.
# As root it installs what is missing with apt-get; otherwise it lists what to install and stops.
set -euo pipefail
PKGS=(
  libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0
  libxcb-randr0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1
  fonts-dejavu-core poppler-utils xvfb xauth
  postgresql
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "KetaDesk needs these system packages, which are not installed:" >&2
  echo "  ${missing[*]}" >&2
  echo "Install them as root:  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
