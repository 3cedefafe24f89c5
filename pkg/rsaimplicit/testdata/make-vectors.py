#!/usr/bin/env python3
# Records what OpenSSL (4.0, as bundled by pyca/cryptography 48) answers for RSA
# PKCS#1 v1.5 decryption with implicit rejection: a throwaway key, ciphertexts with bad
# padding (random, and a valid one with bytes flipped) and one good ciphertext, each
# with the message OpenSSL returns. rsaimplicit_test.go replays them.
#   cd pkg/rsaimplicit/testdata && python3 make-vectors.py > openssl-vectors.json
import json, os
from cryptography.hazmat.primitives.asymmetric import rsa, padding
from cryptography.hazmat.primitives import serialization

cases = []
for bits in (2048, 3072):
    k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()).decode()
    n = bits // 8
    good = k.public_key().encrypt(b"a good message", padding.PKCS1v15())
    cts = [good]
    for i in range(6):
        r = bytearray(os.urandom(n)); r[0] &= 0x3f; cts.append(bytes(r))
    for pos in (0, 1, 2, 5, n // 2, n - 1):
        b = bytearray(good); b[pos] ^= 0x41; cts.append(bytes(b))
    for ct in cts:
        try:
            pt = k.decrypt(ct, padding.PKCS1v15())
        except ValueError:
            continue  # the ciphertext is not below the modulus
        cases.append({"key": pem, "ciphertext": ct.hex(), "plaintext": pt.hex()})
print(json.dumps(cases, indent=1))
