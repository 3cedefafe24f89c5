package pkcs11

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// URI is a parsed RFC 7512 PKCS#11 URI. Path attributes select a token and an object;
// query attributes say how to reach the library. Values are percent-decoded.
//
//	pkcs11:token=signsvr;object=customs-rsa-sign;id=%01%02;type=private
//
// Empty values and absent attributes are both the zero value; Has tells them apart.
type URI struct {
	// Token selection (CK_TOKEN_INFO).
	Token, Manufacturer, Serial, Model string
	// Library selection (CK_INFO).
	LibraryManufacturer, LibraryDescription, LibraryVersion string
	// Slot selection (CK_SLOT_INFO). SlotID is valid only when Has("slot-id").
	SlotManufacturer, SlotDescription string
	SlotID                            uint
	// Object selection: CKA_LABEL, CKA_ID and CKA_CLASS ("public", "private", "cert",
	// "secret-key" or "data").
	Object string
	ID     []byte
	Type   string
	// Query attributes.
	PINSource, PINValue, ModuleName, ModulePath string
	// Vendor and VendorQuery hold vendor-specific ("x-") path and query attributes.
	Vendor, VendorQuery map[string]string

	present map[string]bool
}

// Has reports whether the attribute (by its RFC 7512 name) appeared in the URI.
func (u *URI) Has(attr string) bool { return u.present[attr] }

var pathAttrs = map[string]bool{
	"token": true, "manufacturer": true, "serial": true, "model": true,
	"library-manufacturer": true, "library-description": true, "library-version": true,
	"object": true, "type": true, "id": true,
	"slot-manufacturer": true, "slot-description": true, "slot-id": true,
}

var queryAttrs = map[string]bool{
	"pin-source": true, "pin-value": true, "module-name": true, "module-path": true,
}

// ParseURI parses an RFC 7512 PKCS#11 URI. It is strict about the grammar: unknown
// standard attribute names, repeated attributes, characters that must be
// percent-encoded, bad percent escapes and bad library-version or slot-id values are
// errors. Vendor attributes ("x-" names) are kept in Vendor.
func ParseURI(s string) (*URI, error) {
	const scheme = "pkcs11:"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return nil, errors.New("pkcs11 URI: must start with \"pkcs11:\"")
	}
	rest := s[len(scheme):]
	path, query, hasQuery := strings.Cut(rest, "?")
	u := &URI{present: map[string]bool{}}
	if path != "" {
		for _, a := range strings.Split(path, ";") {
			if err := u.setAttr(a, true); err != nil {
				return nil, err
			}
		}
	}
	if hasQuery && query != "" {
		for _, a := range strings.Split(query, "&") {
			if err := u.setAttr(a, false); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

func (u *URI) setAttr(a string, inPath bool) error {
	where := "query"
	if inPath {
		where = "path"
	}
	name, raw, ok := strings.Cut(a, "=")
	if !ok {
		return fmt.Errorf("pkcs11 URI: %s attribute %q has no \"=\"", where, a)
	}
	if name == "" {
		return fmt.Errorf("pkcs11 URI: empty %s attribute name", where)
	}
	vendor := strings.HasPrefix(name, "x-")
	switch {
	case vendor:
		for _, c := range name[2:] {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("pkcs11 URI: bad vendor attribute name %q", name)
			}
		}
		if len(name) == 2 {
			return fmt.Errorf("pkcs11 URI: bad vendor attribute name %q", name)
		}
	case inPath && !pathAttrs[name]:
		if queryAttrs[name] {
			return fmt.Errorf("pkcs11 URI: %q belongs in the query (after \"?\")", name)
		}
		return fmt.Errorf("pkcs11 URI: unknown path attribute %q", name)
	case !inPath && !queryAttrs[name]:
		if pathAttrs[name] {
			return fmt.Errorf("pkcs11 URI: %q belongs in the path (before \"?\")", name)
		}
		return fmt.Errorf("pkcs11 URI: unknown query attribute %q", name)
	}
	key := name
	if vendor && !inPath {
		key = "?" + name
	}
	if u.present[key] {
		return fmt.Errorf("pkcs11 URI: attribute %q given twice", name)
	}
	val, err := pctDecode(raw, inPath)
	if err != nil {
		return fmt.Errorf("pkcs11 URI: attribute %q: %v", name, err)
	}
	u.present[key] = true
	sval := string(val)
	switch name {
	case "token":
		u.Token = sval
	case "manufacturer":
		u.Manufacturer = sval
	case "serial":
		u.Serial = sval
	case "model":
		u.Model = sval
	case "library-manufacturer":
		u.LibraryManufacturer = sval
	case "library-description":
		u.LibraryDescription = sval
	case "library-version":
		if !validVersion(sval) {
			return fmt.Errorf("pkcs11 URI: library-version %q is not DIGITS[.DIGITS]", sval)
		}
		u.LibraryVersion = sval
	case "object":
		u.Object = sval
	case "type":
		switch sval {
		case "public", "private", "cert", "secret-key", "data":
		default:
			return fmt.Errorf("pkcs11 URI: unknown object type %q", sval)
		}
		u.Type = sval
	case "id":
		u.ID = val
	case "slot-manufacturer":
		u.SlotManufacturer = sval
	case "slot-description":
		u.SlotDescription = sval
	case "slot-id":
		if sval == "" || strings.TrimLeft(sval, "0123456789") != "" {
			return fmt.Errorf("pkcs11 URI: slot-id %q is not a decimal number", sval)
		}
		n, err := strconv.ParseUint(sval, 10, 0)
		if err != nil {
			return fmt.Errorf("pkcs11 URI: slot-id %q: %v", sval, err)
		}
		u.SlotID = uint(n)
	case "pin-source":
		u.PINSource = sval
	case "pin-value":
		u.PINValue = sval
	case "module-name":
		u.ModuleName = sval
	case "module-path":
		u.ModulePath = sval
	default: // vendor
		m := &u.Vendor
		if !inPath {
			m = &u.VendorQuery
		}
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[name] = sval
	}
	return nil
}

func validVersion(s string) bool {
	major, minor, hasMinor := strings.Cut(s, ".")
	isDigits := func(x string) bool { return x != "" && strings.TrimLeft(x, "0123456789") == "" }
	return isDigits(major) && (!hasMinor || isDigits(minor))
}

// isPChar reports whether c may appear unencoded in a path (or query) value.
func isPChar(c byte, inPath bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', // unreserved
		':', '[', ']', '@', '!', '$', '\'', '(', ')', '*', '+', ',', '=': // pk11-res-avail
		return true
	case '&':
		return inPath
	case '/', '?', '|':
		return !inPath
	}
	return false
}

func pctDecode(s string, inPath bool) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return nil, fmt.Errorf("truncated percent escape at offset %d", i)
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("bad percent escape %q", s[i:i+3])
			}
			out = append(out, h<<4|l)
			i += 2
			continue
		}
		if !isPChar(c, inPath) {
			return nil, fmt.Errorf("character %q must be percent-encoded", c)
		}
		out = append(out, c)
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String writes u back as a URI: standard attributes in RFC 7512 order, the id fully
// percent-encoded, other values encoded only where the grammar requires it.
func (u *URI) String() string {
	var path, query []string
	add := func(list *[]string, name, val string, inPath bool) {
		if u.present[name] {
			*list = append(*list, name+"="+pctEncode([]byte(val), inPath))
		}
	}
	add(&path, "library-manufacturer", u.LibraryManufacturer, true)
	add(&path, "library-description", u.LibraryDescription, true)
	add(&path, "library-version", u.LibraryVersion, true)
	add(&path, "slot-manufacturer", u.SlotManufacturer, true)
	add(&path, "slot-description", u.SlotDescription, true)
	if u.present["slot-id"] {
		path = append(path, "slot-id="+strconv.FormatUint(uint64(u.SlotID), 10))
	}
	add(&path, "manufacturer", u.Manufacturer, true)
	add(&path, "model", u.Model, true)
	add(&path, "serial", u.Serial, true)
	add(&path, "token", u.Token, true)
	add(&path, "object", u.Object, true)
	add(&path, "type", u.Type, true)
	if u.present["id"] {
		var b strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&b, "%%%02X", c)
		}
		path = append(path, "id="+b.String())
	}
	add(&query, "pin-source", u.PINSource, false)
	add(&query, "pin-value", u.PINValue, false)
	add(&query, "module-name", u.ModuleName, false)
	add(&query, "module-path", u.ModulePath, false)
	for _, n := range sortedKeys(u.Vendor) {
		path = append(path, n+"="+pctEncode([]byte(u.Vendor[n]), true))
	}
	for _, n := range sortedKeys(u.VendorQuery) {
		query = append(query, n+"="+pctEncode([]byte(u.VendorQuery[n]), false))
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

func pctEncode(b []byte, inPath bool) string {
	var sb strings.Builder
	for _, c := range b {
		if isPChar(c, inPath) {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

func sortedKeys(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// redactURI hides the value of a pin-value query attribute, for error messages.
func redactURI(s string) string {
	path, query, ok := strings.Cut(s, "?")
	if !ok {
		return s
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if strings.HasPrefix(p, "pin-value=") {
			parts[i] = "pin-value=REDACTED"
		}
	}
	return path + "?" + strings.Join(parts, "&")
}
