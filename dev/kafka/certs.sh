#!/usr/bin/env bash
# Generates, once, the TLS material of the local broker's SASL_SSL listener under DIR (default
# .cache/stack/kafka/tls):
#   ca.pem / ca.key          a throwaway certificate authority (clients trust ca.pem)
#   broker.pem / broker.key  the broker certificate, SAN DNS:localhost + IP:127.0.0.1, signed by the CA
#   broker-keystore.pem      key + chain in one file, for Kafka's ssl.keystore.type=PEM
# A second run keeps what is there as long as the broker certificate still verifies against the CA, so
# clients holding ca.pem keep working across restarts. Private keys are mode 0600.
set -euo pipefail

dir=${1:?usage: certs.sh DIR}
days=${CERT_DAYS:-825}
mkdir -p "$dir"
cd "$dir"

if [[ -s ca.pem && -s broker.pem && -s broker-keystore.pem ]] &&
  openssl verify -CAfile ca.pem broker.pem >/dev/null 2>&1; then
  exit 0
fi

umask 077
rm -f ca.pem ca.key ca.srl broker.pem broker.key broker.csr broker-keystore.pem

openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days "$days" \
  -keyout ca.key -out ca.pem -subj "/CN=mwaa-kafka local CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# PKCS#8 ("BEGIN PRIVATE KEY"), the form Kafka's PEM key store reads.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out broker.key 2>/dev/null
openssl req -new -key broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
  -out broker.pem -extfile <(printf '%s\n' \
    "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1") 2>/dev/null

cat broker.key broker.pem ca.pem >broker-keystore.pem
chmod 0644 ca.pem broker.pem
rm -f broker.csr
openssl verify -CAfile ca.pem broker.pem >/dev/null
