#!/usr/bin/env bash
# Creates credentials.env, from which kustomize generates the Secret oauth-sidecar-credentials: a copy of
# credentials.env.example with a fresh Redis password and record encryption key filled in,
#
#   REDIS_PASSWORD                 openssl rand -hex 32
#   OAUTH_SIDECAR_ENCRYPTION_KEY   openssl rand -base64 32
#
# readable by you only (mode 0600). Fill in the provider credentials, then `kubectl apply -k`.
#
#   deploy/kubernetes/make-credentials.sh [OUT_FILE]     (default: credentials.env beside this script)
#
# Never replaces an existing file: records stored with one encryption key cannot be read with another, and
# running proxies lose Redis when its password changes.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/credentials.env}

command -v openssl >/dev/null || { echo "make-credentials.sh: openssl not found" >&2; exit 1; }
if [[ -e $out ]]; then
  echo "make-credentials.sh: $out already exists; not replacing it (a new encryption key could not read the stored records)" >&2
  exit 1
fi
redis_password=$(openssl rand -hex 32)
encryption_key=$(openssl rand -base64 32)

umask 077
set -o noclobber # a file that appeared meanwhile is not overwritten either
while IFS= read -r line; do
  case $line in
    REDIS_PASSWORD=*) printf 'REDIS_PASSWORD=%s\n' "$redis_password" ;;
    OAUTH_SIDECAR_ENCRYPTION_KEY=*) printf 'OAUTH_SIDECAR_ENCRYPTION_KEY=%s\n' "$encryption_key" ;;
    *) printf '%s\n' "$line" ;;
  esac
done <"$here/credentials.env.example" >"$out"

echo "wrote $out (mode 0600) with a new REDIS_PASSWORD and OAUTH_SIDECAR_ENCRYPTION_KEY."
echo "Next: fill in the provider credentials in it, then: kubectl apply -k $here"
