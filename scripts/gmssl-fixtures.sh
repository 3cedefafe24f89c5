#!/bin/sh
# gmssl-fixtures.sh remakes pkg/sign/testdata/gmssl: SM2 SignedData written by GmSSL
# 3.x itself (no signed attributes, SM2 over SM3 of the DER EncapsulatedContentInfo,
# no Z value), with the CA and signer certificates GmSSL made for it. The files are
# committed; this script is how they were made, run by hand, never by the tests.
#
#   git clone https://github.com/guanzhi/GmSSL && cd GmSSL && mkdir build && cd build
#   cmake .. && make gmssl-bin
#   GMSSL=$PWD/bin/gmssl scripts/gmssl-fixtures.sh      (from the signsvr checkout)
#
# The keys are throw-away (password "P@ssw0rd") and kept beside the fixtures so that
# more objects can be made with the same certificates.
set -eu
GMSSL=${GMSSL:-gmssl}
out=$(dirname "$0")/../pkg/sign/testdata/gmssl
mkdir -p "$out"
cd "$out"
pass=P@ssw0rd
"$GMSSL" version > gmssl-version.txt

"$GMSSL" sm2keygen -pass $pass -out ca.key.pem
"$GMSSL" certgen -C CN -O "GmSSL fixtures" -CN "GmSSL fixture CA" -serial_len 12 -days 3650 \
	-key ca.key.pem -pass $pass -ca -path_len_constraint 0 -key_usage keyCertSign -key_usage cRLSign \
	-gen_subject_key_id -out ca.pem

"$GMSSL" sm2keygen -pass $pass -out signer.key.pem
"$GMSSL" reqgen -C CN -O "GmSSL fixtures" -CN "GmSSL fixture signer" -key signer.key.pem -pass $pass -out signer.req.pem
"$GMSSL" reqsign -in signer.req.pem -serial_len 12 -days 3650 -cacert ca.pem -key ca.key.pem -pass $pass \
	-key_usage digitalSignature -key_usage nonRepudiation -gen_authority_key_id -gen_subject_key_id -out signer.pem
rm signer.req.pem

# An encryption key and certificate for the nested message below.
"$GMSSL" sm2keygen -pass $pass -out recipient.key.pem
"$GMSSL" reqgen -C CN -O "GmSSL fixtures" -CN "GmSSL fixture recipient" -key recipient.key.pem -pass $pass -out recipient.req.pem
"$GMSSL" reqsign -in recipient.req.pem -serial_len 12 -days 3650 -cacert ca.pem -key ca.key.pem -pass $pass \
	-key_usage keyEncipherment -key_usage dataEncipherment -gen_authority_key_id -gen_subject_key_id -out recipient.pem
rm recipient.req.pem

# signed.pem: a short content (short-form DER lengths); signed-long.pem: 1000 bytes
# (long-form lengths in the EncapsulatedContentInfo header that is hashed).
printf 'signed by GmSSL cmssign\n' > content.txt
awk 'BEGIN { for (i = 0; i < 40; i++) printf "line %02d of the long GmSSL content.\n", i }' | head -c 1000 > content-long.txt
for f in "content.txt signed.pem" "content-long.txt signed-long.pem"; do
	set -- $f
	"$GMSSL" cmssign -key signer.key.pem -pass $pass -cert signer.pem -in "$1" -out "$2"
	# GmSSL reads back its own object.
	"$GMSSL" cmsverify -in "$2" -out verified.txt
	cmp "$1" verified.txt
	rm verified.txt
done

# enveloped.pem: the DER of signed.pem enveloped by cmsencrypt to recipient.pem (a
# nested signed-then-enveloped message, for DecryptAndVerify); cmsdecrypt opens it.
"$GMSSL" cmsparse -in signed.pem >/dev/null
sed -e '1d' -e '$d' signed.pem | base64 -d > signed.der
"$GMSSL" cmsencrypt -rcptcert recipient.pem -in signed.der -out enveloped.pem
"$GMSSL" cmsdecrypt -key recipient.key.pem -pass $pass -cert recipient.pem -in enveloped.pem -out opened.der
cmp signed.der opened.der
rm signed.der opened.der
