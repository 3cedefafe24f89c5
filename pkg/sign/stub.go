package sign

import "errors"

// errNotImplemented marks the API skeleton; removed when the package is written.
var errNotImplemented = errors.New("sign: not implemented yet")
