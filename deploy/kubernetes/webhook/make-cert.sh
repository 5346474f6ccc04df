#!/usr/bin/env bash
# Creates the injector's TLS material with openssl: a private CA and a serving certificate for the
# webhook Service's DNS names, then prints the caBundle and the two kubectl commands that install them.
#
#   deploy/kubernetes/webhook/make-cert.sh [OUT_DIR]            (default ./injector-tls)
#   NAMESPACE=… SERVICE=… DAYS=… to change the defaults.
#
# Keep OUT_DIR/ca.key out of version control; rerun before the certificate expires (DAYS, default 365).
set -euo pipefail

namespace=${NAMESPACE:-oauth-sidecar-system}
service=${SERVICE:-oauth-sidecar-injector}
days=${DAYS:-365}
out=${1:-./injector-tls}

command -v openssl >/dev/null || { echo "make-cert.sh: openssl not found" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"
umask 077

dns="${service}.${namespace}.svc"
cat >"$out/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:${service}, DNS:${service}.${namespace}, DNS:${dns}, DNS:${dns}.cluster.local
EXT

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -subj "/CN=oauth-sidecar-injector-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=${dns}" \
  -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
openssl x509 -req -sha256 -days "$days" -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
  -CAcreateserial -extfile "$out/server.ext" -out "$out/tls.crt" 2>/dev/null
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null
rm -f "$out/tls.csr" "$out/server.ext"

ca_bundle=$(base64 <"$out/ca.crt" | tr -d '\n')

cat <<MSG
Wrote $out/ca.crt, $out/tls.crt, $out/tls.key (serving ${dns}, ${days} days).

caBundle:
${ca_bundle}

Install the serving certificate and key:
  kubectl create namespace ${namespace} --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n ${namespace} create secret tls ${service}-tls --cert=$out/tls.crt --key=$out/tls.key \\
    --dry-run=client -o yaml | kubectl apply -f -

After \`kubectl apply -k deploy/kubernetes/webhook/\`, set the caBundle:
  kubectl patch mutatingwebhookconfiguration ${service} --type=json \\
    -p '[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"${ca_bundle}"}]'
MSG
