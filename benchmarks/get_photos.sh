#!/usr/bin/env bash
# Real photographs for benchmarks/bench_detector.py, from packages (no dataset download). Usage:
#   bash benchmarks/get_photos.sh [/tmp/photos]
# Debian: mate-backgrounds (nature/*.jpg, GPL-2+), plasma-workspace-wallpapers (photographic wallpapers, LGPLv3);
# PyPI: the scikit-image wheel's bundled sample images (CC0 / public domain). Unpacked, not installed (no root needed).
# The sources used, their licences and credits: PHOTO_SOURCES in benchmarks/photo_sources.py.
set -euo pipefail
dest=${1:-/tmp/photos}
mkdir -p "$dest" && cd "$dest"
apt-get download mate-backgrounds plasma-workspace-wallpapers
for deb in mate-backgrounds_*.deb plasma-workspace-wallpapers_*.deb; do dpkg -x "$deb" deb; done
python -m pip download --no-deps --only-binary :all: scikit-image==0.26.0 -d .
python -m zipfile -e scikit_image-0.26.0-*.whl wheel
ls deb/usr/share/backgrounds/mate/nature deb/usr/share/wallpapers wheel/skimage/data | wc -l
