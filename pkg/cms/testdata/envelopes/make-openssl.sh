#!/usr/bin/env bash
# Regenerates the OpenSSL-made envelope seeds in this directory (OpenSSL 3.0).
# Keys and certificates are throwaway and not kept: the files are parser seeds and
# shape references, not decryption tests (those run openssl at test time).
#   cd pkg/cms/testdata/envelopes && ./make-openssl.sh
set -euo pipefail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf 'seed content for the cms parsers\n' > "$tmp/m"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/rsa.key" -out "$tmp/rsa.crt" -subj /CN=rsa -days 1 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ec.key" -out "$tmp/ec.crt" -subj /CN=ec -days 1 2>/dev/null
enc() { out=$1; shift; openssl cms -encrypt -binary -outform DER -in "$tmp/m" -out "$out" "$@"; }
enc openssl-rsa-v15-aes256cbc.der -aes256 -recip "$tmp/rsa.crt"
enc openssl-rsa-oaep-aes256gcm.der -aes-256-gcm -recip "$tmp/rsa.crt" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256
enc openssl-rsa-keyid-aes128cbc.der -aes128 -keyid -recip "$tmp/rsa.crt"
enc openssl-ec-sha256kdf-aes128gcm.der -aes-128-gcm -recip "$tmp/ec.crt" -keyopt ecdh_kdf_md:sha256
enc openssl-ec-keyid-aes256cbc.der -aes256 -keyid -recip "$tmp/ec.crt" -keyopt ecdh_kdf_md:sha256
enc openssl-mixed-aes256gcm.der -aes-256-gcm -recip "$tmp/rsa.crt" -recip "$tmp/ec.crt"
enc openssl-stream-ber-aes128cbc.der -aes128 -stream -recip "$tmp/rsa.crt" -recip "$tmp/ec.crt"
openssl cms -sign -binary -outform DER -in "$tmp/m" -nodetach -signer "$tmp/ec.crt" -inkey "$tmp/ec.key" \
  | openssl cms -encrypt -binary -outform DER -aes-128-gcm -out openssl-nested-signed-aes128gcm.der -recip "$tmp/rsa.crt"
enc openssl-ec-cofactor-aes256cbc.der -aes256 -recip "$tmp/ec.crt" -keyopt ecdh_kdf_md:sha256 -keyopt ecdh_cofactor_mode:1
enc openssl-kekri-aes128cbc.der -aes128 -secretkey 000102030405060708090a0b0c0d0e0f -secretkeyid 6b656b2d31
enc openssl-pwri-aes256cbc.der -aes256 -pwri_password seed-password
enc openssl-pwri-rsa-aes128cbc.der -aes128 -pwri_password seed-password -recip "$tmp/rsa.crt"
