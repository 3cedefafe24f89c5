#!/bin/sh
# Regenerates the SignedData seeds in this directory with openssl 3.0 (run here).
# The key and certificate are throwaway test material, made fresh each time.
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
  -subj /CN=cms-seed -days 3650 -addext subjectKeyIdentifier=hash 2>/dev/null
printf 'signsvr cms test content\n' > content.txt
openssl cms -sign -binary -nodetach -in content.txt -signer cert.pem -inkey key.pem -outform DER -out ecdsa-attached.der
openssl cms -sign -binary -keyid -in content.txt -signer cert.pem -inkey key.pem -outform DER -out ecdsa-detached-keyid.der
openssl cms -sign -binary -nodetach -noattr -in content.txt -signer cert.pem -inkey key.pem -outform DER -out ecdsa-noattr.der
openssl cms -sign -binary -nodetach -stream -in content.txt -signer cert.pem -inkey key.pem -outform DER -out ecdsa-stream.ber
openssl cms -sign -binary -nodetach -indef -nocerts -md sha384 -in content.txt -signer cert.pem -inkey key.pem -outform DER -out ecdsa-indef-nocerts.ber
rm key.pem
