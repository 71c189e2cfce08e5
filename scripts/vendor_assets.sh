#!/usr/bin/env bash
# Fetch the JavaScript and the fonts the HTML report inlines, from the npm registry, into
# src/concerted/assets, with each package's licence beside it.
#
# The report must open offline, so nothing is loaded from a CDN at view time: the built
# files below are copied into the package and inlined into every report.html.
#
#   package    version  licence  what the report uses it for
#   uplot      1.6.32   MIT      timelines (canvas; 51 kB minified)
#   cytoscape  3.35.0   MIT      the interactive network view (canvas; 443 kB minified)
#   @fontsource/noto-naskh-arabic    5.3.0  OFL-1.1  Arabic script: Urdu, Arabic, Persian
#                                                    (53 kB, the Arabic-script WOFF2 only)
#   @fontsource/noto-sans-devanagari 5.3.0  OFL-1.1  Devanagari: Hindi, Marathi, Nepali
#                                                    (50 kB, the Devanagari WOFF2 only)
#
# The fonts are embedded only in pages whose text uses their script, and each page gets
# a copy cut down to the characters it uses (concerted.outputs.fonts, with fontTools).
#
# Chosen for size and fitness: uPlot is the smallest fast time-series library; Cytoscape.js
# draws on a 2D canvas (no WebGL, so it renders in any headless browser) and gives zoom,
# pan, hover and click out of the box. Apache ECharts (Apache-2.0) would cover both but
# weighs about 1 MB minified; sigma.js needs WebGL.
#
# To update: change a version below, run this script, check the new sha256 of the npm
# tarball (printed) against `npm view PACKAGE@VERSION dist.integrity`, put it below, and
# rerun the report tests (tests/test_report.py).
set -euo pipefail
cd "$(dirname "$0")/.."
assets=src/concerted/assets
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package version sha256-of-the-npm-tarball licence
packages=(
  "uplot 1.6.32 4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d MIT"
  "cytoscape 3.35.0 058a81a7534777ea68dc737e9b77bd5b701e00acd9bee246245a576eeeac32e6 MIT"
  "@fontsource/noto-naskh-arabic 5.3.0 8e4d87d3ae28020665d61054e4262162797feee84f0f145502d15e769a5bbb73 OFL-1.1"
  "@fontsource/noto-sans-devanagari 5.3.0 8d42be0e944481b61e68c7702037d4143e96bf48dbb72d19ea05d0cacc1323d5 OFL-1.1"
)
# package: the files taken from the tarball's package/ folder
declare -A files=(
  [uplot]="dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"
  [cytoscape]="dist/cytoscape.min.js LICENSE"
  [@fontsource/noto-naskh-arabic]="files/noto-naskh-arabic-arabic-400-normal.woff2 LICENSE"
  [@fontsource/noto-sans-devanagari]="files/noto-sans-devanagari-devanagari-400-normal.woff2 LICENSE"
)

{
  echo "# Vendored assets"
  echo
  echo "Inlined into every report.html by concerted.outputs.page (each font only into pages whose text uses its script, cut down to the characters used); fetched by scripts/vendor_assets.sh."
  echo
  echo "| package | version | licence | npm tarball sha256 | files |"
  echo "| --- | --- | --- | --- | --- |"
} > "$work/README.md"

for entry in "${packages[@]}"; do
  read -r name version sha licence <<< "$entry"
  (cd "$work" && npm pack --silent "$name@$version" > /dev/null)
  # npm names a scoped package's tarball @scope/name as scope-name; the licence file is
  # named after the package without its scope.
  short=${name##*/}
  packed=${name#@}
  tarball="$work/${packed//\//-}-$version.tgz"
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  echo "$name $version sha256 $got"
  if [ "$got" != "$sha" ]; then
    echo "error: $tarball has sha256 $got, expected $sha" >&2
    exit 1
  fi
  declared=$(tar -xzOf "$tarball" package/package.json | python3 -c 'import json,sys; print(json.load(sys.stdin)["license"])')
  if [ "$declared" != "$licence" ]; then
    echo "error: $name $version declares licence $declared, expected $licence" >&2
    exit 1
  fi
  mkdir -p "$work/$short"
  tar -xzf "$tarball" -C "$work/$short"
  copied=()
  for f in ${files[$name]}; do
    base=$(basename "$f")
    if [ "$base" = LICENSE ]; then base="LICENSE.$short"; fi
    cp "$work/$short/package/$f" "$assets/$base"
    copied+=("$base")
  done
  echo "| $name | $version | $licence | \`$got\` | ${copied[*]} |" >> "$work/README.md"
done
cp "$work/README.md" "$assets/README.md"
