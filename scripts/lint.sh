#!/usr/bin/env bash
# Static checks run by the test command: clang-format conformance and the
# house ban list of unsafe C functions (see shared STYLE house rule 18).
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find service api tools tests bench -name '*.[ch]')

if command -v clang-format >/dev/null 2>&1; then
  bad=""
  for f in $files; do
    [ -f "$f" ] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
  done
  if [ -n "$bad" ]; then
    echo "lint: not clang-formatted:$bad" >&2
    status=1
  fi
else
  echo "lint: clang-format not installed" >&2
  status=1
fi

banned='\b(strcpy|strcat|strncpy|sprintf|vsprintf|strtok|atoi|atol|atoll|gets|strerror|localtime|gmtime|asctime|ctime)[[:space:]]*\('
hits=$(grep -nE "$banned" $files | grep -v 'lint: allow' || true)
if [ -n "$hits" ]; then
  echo "lint: banned functions (use snprintf, strtoll, strerror_r, gmtime_r...):" >&2
  echo "$hits" >&2
  status=1
fi

# The walls of docs/ARCHITECTURE.md: the engine (service/) knows nothing of
# HTTP serving, so nothing under it includes libmicrohttpd or a header of
# api/ or main/; within api/ and main/, only api/server.c includes
# <microhttpd.h>. (svc_core does not link libmicrohttpd nor see api/ on its
# include path, so most slips fail the build too; this says why.)
api_headers=$(cd api && ls -- *.h | sed 's/\./\\./g' | paste -sd'|' -)
hits=$(grep -rnE "#[[:space:]]*include[[:space:]]*[<\"](([^\">]*/)?microhttpd\.h|(\.\./)*(api|main)/|($api_headers)[\">])" \
  --include='*.c' --include='*.h' service || true)
if [ -n "$hits" ]; then
  echo "lint: service/ must not include libmicrohttpd or api/ headers (docs/ARCHITECTURE.md):" >&2
  echo "$hits" >&2
  status=1
fi
hits=$(grep -rlE '#[[:space:]]*include[[:space:]]*<microhttpd\.h>' --include='*.c' --include='*.h' api main |
  grep -vx 'api/server.c' || true)
if [ -n "$hits" ]; then
  echo "lint: only api/server.c includes <microhttpd.h>; also:" $hits >&2
  status=1
fi

# The route table and openapi.yaml must list the same operations.
routes=$(grep -oE '\{"(GET|POST|PUT|PATCH|DELETE)", "[^"]+"' api/routes.c |
  sed -E 's/\{"([A-Z]+)", "([^"]+)"/\1 \2/' | sort)
spec=$(awk '/^  \/[^ ]*:$/ { path = substr($1, 1, length($1) - 1) }
            /^    (get|post|put|patch|delete):$/ { m = toupper(substr($1, 1, length($1) - 1)); print m " " path }' \
  openapi.yaml | sort)
if [ "$routes" != "$spec" ]; then
  echo "lint: api/routes.c and openapi.yaml disagree:" >&2
  diff <(echo "$routes") <(echo "$spec") >&2 || true
  status=1
fi

[ $status -eq 0 ] && echo "lint: ok"
exit $status
