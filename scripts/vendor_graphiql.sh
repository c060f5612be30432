#!/usr/bin/env bash
# Re-fetch the GraphiQL page's assets from npm into mensajero/static/graphiql/.
#
# The GraphQL IDE at /graphql must work with no internet access, so its
# JavaScript and CSS are committed to the repository instead of loaded from a
# CDN. Run this to upgrade them (edit the versions below and in README.md),
# then check the page in a browser and commit the result.
#
# Needs npm (registry access only while running). `npm pack` downloads each
# published tarball as is: nothing is installed, built or resolved.
set -euo pipefail

GRAPHIQL_VERSION=3.8.3
EXPLORER_VERSION=1.0.2
REACT_VERSION=18.2.0
GRAPHQL_WS_VERSION=5.16.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/mensajero/static/graphiql"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent \
  "graphiql@$GRAPHIQL_VERSION" \
  "@graphiql/plugin-explorer@$EXPLORER_VERSION" \
  "react@$REACT_VERSION" \
  "react-dom@$REACT_VERSION" \
  "graphql-ws@$GRAPHQL_WS_VERSION" >/dev/null

unpack() {  # unpack <tarball> <dir>
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" --strip-components=1
}
unpack "graphiql-$GRAPHIQL_VERSION.tgz" graphiql
unpack "graphiql-plugin-explorer-$EXPLORER_VERSION.tgz" explorer
unpack "react-$REACT_VERSION.tgz" react
unpack "react-dom-$REACT_VERSION.tgz" react-dom
unpack "graphql-ws-$GRAPHQL_WS_VERSION.tgz" graphql-ws

mkdir -p "$DEST/licenses"
cp react/umd/react.production.min.js "$DEST/react.production.min.js"
cp react-dom/umd/react-dom.production.min.js "$DEST/react-dom.production.min.js"
cp graphiql/graphiql.min.js "$DEST/graphiql.min.js"
cp graphiql/graphiql.min.css "$DEST/graphiql.min.css"
cp explorer/dist/index.umd.js "$DEST/plugin-explorer.umd.js"
cp explorer/dist/style.css "$DEST/plugin-explorer.css"
cp graphql-ws/umd/graphql-ws.min.js "$DEST/graphql-ws.min.js"

cp graphiql/LICENSE "$DEST/licenses/graphiql.LICENSE"
cp react/LICENSE "$DEST/licenses/react.LICENSE"
cp react-dom/LICENSE "$DEST/licenses/react-dom.LICENSE"
cp graphql-ws/LICENSE.md "$DEST/licenses/graphql-ws.LICENSE"
if [ -f explorer/LICENSE ]; then
  cp explorer/LICENSE "$DEST/licenses/plugin-explorer.LICENSE"
fi

# Source maps point at files we do not ship; drop the trailing comments so
# browsers do not ask for them.
sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' \
  "$DEST"/*.js "$DEST"/*.css

echo "vendored into $DEST:"
ls -l "$DEST"
