package envelope

import "signsvr.dev/signsvr/pkg/keywrap"

// AES key wrap (RFC 3394), as the key-agreement and KEK recipients of CMS use it.

func aesKeyWrap(kek, key []byte) ([]byte, error) { return keywrap.Wrap(kek, key) }

func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) { return keywrap.Unwrap(kek, wrapped) }
