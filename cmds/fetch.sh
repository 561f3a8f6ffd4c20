# Shared by the download scripts (sourced): resumable-safe download and checksum check.

fetch() {  # fetch URL FILE: download to FILE.part, then rename, so a cut download is not reused
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$2.part" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -O "$2.part" "$1"
  else
    echo "$(basename "$0" .sh): neither curl nor wget is installed; install one of them" >&2
    exit 2
  fi
  mv "$2.part" "$2"
}

check_md5() {  # check_md5 FILE SUM (skipped when md5sum is absent)
  if command -v md5sum >/dev/null 2>&1; then
    if [ "$(md5sum "$1" | cut -d' ' -f1)" != "$2" ]; then
      echo "$(basename "$0" .sh): $1 is not the expected archive (md5 differs): delete it and run again" >&2
      exit 2
    fi
  fi
}
