#!/usr/bin/env bash
# Replaces the bundled Redoc with the pinned release from the npm registry, checked against the
# registry's integrity hash. Run from the repository root; commit the result.
set -euo pipefail
version=2.5.4
integrity=sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "redoc@$version" --silent >/dev/null)
got="sha512-$(openssl dgst -sha512 -binary "$tmp/redoc-$version.tgz" | base64 -w0)"
[ "$got" = "$integrity" ] || { echo "redoc@$version: integrity $got, want $integrity" >&2; exit 1; }
tar xzf "$tmp/redoc-$version.tgz" -C "$tmp"
cp "$tmp/package/bundles/redoc.standalone.js" "$tmp/package/bundles/redoc.standalone.js.LICENSE.txt" docs/reference/
cp "$tmp/package/LICENSE" docs/reference/REDOC-LICENSE
echo "docs/reference: redoc $version"
