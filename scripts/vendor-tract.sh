#!/usr/bin/env bash
# vendor/tract-nnef and vendor/tract-onnx are the crates.io releases of those
# crates plus vendor/patches/<crate>.patch (vendor/README.md says why).
#
#   scripts/vendor-tract.sh           rewrite vendor/<crate> from the release and its patch
#   scripts/vendor-tract.sh --check   fail unless vendor/<crate> is exactly that (CI)
#   scripts/vendor-tract.sh --diff    rewrite vendor/patches/<crate>.patch from an edited vendor/<crate>
#
# The .crate files come from cargo's download cache when it has them, else
# from static.crates.io (the package registry), and are checked against the
# sha256 that crates.io publishes (the `checksum` Cargo.lock held for them
# before they were patched).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=write
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --diff) mode=diff ;;
  *) echo "usage: scripts/vendor-tract.sh [--check | --diff]" >&2; exit 2 ;;
esac

# name version sha256 (of the .crate file)
crates=(
  "tract-nnef 0.23.9 3bdfc2f17d10eaf04d27f7a2d7b45e3dc41ffd0bc6c1e48d87636d7e960d441d"
  "tract-onnx 0.23.9 43727ce75fcd18908927e6e1b47d043fe5606d8b85c8ea6aa36481406d37b24a"
)

cache=target/vendor-cache
mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() { # name version sha -> path of the verified .crate file
  local name=$1 version=$2 sha=$3 file="$cache/$1-$2.crate"
  if [[ ! -f $file ]]; then
    local cached
    cached=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n 1 || true)
    if [[ -n $cached ]]; then
      cp "$cached" "$file.part"
    else
      local url="https://static.crates.io/crates/$name/$name-$version.crate"
      if command -v curl >/dev/null 2>&1; then
        curl -fsSL "$url" -o "$file.part"
      else
        python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$url" "$file.part"
      fi
    fi
    mv "$file.part" "$file"
  fi
  if ! echo "$sha  $file" | sha256sum --check --quiet - >/dev/null 2>&1; then
    rm -f "$file"
    echo "vendor-tract: $name-$version.crate does not have the published sha256 $sha (deleted; run again)" >&2
    exit 1
  fi
  echo "$file"
}

failed=0
for entry in "${crates[@]}"; do
  read -r name version sha <<<"$entry"
  crate=$(fetch "$name" "$version" "$sha")
  tar -xzf "$crate" -C "$work"
  upstream="$work/$name-$version"
  patch_file="$root/vendor/patches/$name.patch"
  case $mode in
    diff)
      # a/ = the release, b/ = vendor/<crate>; paths inside the crate
      rm -rf "$work/a" "$work/b"
      mv "$upstream" "$work/a"
      cp -r "vendor/$name" "$work/b"
      # (without prefixes the folder names a/ and b/ are the usual ones)
      mkdir -p "$(dirname "$patch_file")"
      (cd "$work" && git diff --no-index --no-prefix a b > "$patch_file") || true
      echo "vendor-tract: wrote vendor/patches/$name.patch ($(grep -c '^diff --git' "$patch_file") files)"
      ;;
    *)
      (cd "$upstream" && git apply -p1 "$patch_file")
      if [[ $mode == check ]]; then
        if ! diff -r "$upstream" "vendor/$name" >"$work/$name.diff"; then
          echo "vendor-tract: vendor/$name is not $name $version from crates.io plus vendor/patches/$name.patch:" >&2
          head -n 40 "$work/$name.diff" >&2
          failed=1
        else
          echo "vendor-tract: vendor/$name = $name $version (crates.io, sha256 ok) + vendor/patches/$name.patch"
        fi
      else
        rm -rf "vendor/$name"
        mv "$upstream" "vendor/$name"
        echo "vendor-tract: wrote vendor/$name"
      fi
      ;;
  esac
done
exit $failed
