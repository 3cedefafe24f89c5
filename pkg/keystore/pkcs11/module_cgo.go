//go:build cgo

package pkcs11

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// A PKCS#11 library has one state per process: C_Initialize may run once until
// C_Finalize. Stores, admin handles and tests in one process that name the same library
// share one initialised context through this registry, and the last one to close it
// finalises it. (This global mirrors the C library's own; it chooses nothing.)
var libraries = struct {
	sync.Mutex
	m map[string]*library
}{m: map[string]*library{}}

type library struct {
	path string
	ctx  *p11.Ctx
	refs int
	// rw is held shared by every call and exclusively by Reinitialize, so the library
	// is never finalised under a call in flight.
	rw sync.RWMutex
}

func openModule(path string) (module, error) {
	libraries.Lock()
	defer libraries.Unlock()
	if lib, ok := libraries.m[path]; ok {
		lib.refs++
		return &cgoModule{lib: lib}, nil
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("cannot load the PKCS#11 library %s (missing file, or not a PKCS#11 module)", path)
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		return nil, fmt.Errorf("C_Initialize: %w", convErr(err))
	}
	lib := &library{path: path, ctx: ctx, refs: 1}
	libraries.m[path] = lib
	return &cgoModule{lib: lib}, nil
}

// cgoModule is the real seam: github.com/miekg/pkcs11 calls, Init/Final folded in.
type cgoModule struct {
	lib    *library
	closed bool
}

func (m *cgoModule) c() *p11.Ctx { return m.lib.ctx }

func (m *cgoModule) Reinitialize() error {
	m.lib.rw.Lock()
	defer m.lib.rw.Unlock()
	_ = m.lib.ctx.Finalize()
	if err := m.lib.ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return fmt.Errorf("C_Initialize: %w", convErr(err))
	}
	return nil
}

func (m *cgoModule) Close() error {
	libraries.Lock()
	defer libraries.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.lib.refs--
	if m.lib.refs > 0 {
		return nil
	}
	delete(libraries.m, m.lib.path)
	err := m.lib.ctx.Finalize()
	m.lib.ctx.Destroy()
	return convErr(err)
}

// convErr turns miekg's error type into this package's ckError.
func convErr(err error) error {
	var e p11.Error
	if errors.As(err, &e) {
		return ckError(e)
	}
	return err
}

func (m *cgoModule) SlotList() ([]uint, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	s, err := m.c().GetSlotList(true)
	return s, convErr(err)
}

func (m *cgoModule) TokenInfo(slot uint) (tokenInfo, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	ti, err := m.c().GetTokenInfo(slot)
	if err != nil {
		return tokenInfo{}, convErr(err)
	}
	trim := func(s string) string { return strings.TrimRight(s, " \x00") }
	return tokenInfo{Label: trim(ti.Label), Serial: trim(ti.SerialNumber), Manufacturer: trim(ti.ManufacturerID),
		Model: trim(ti.Model), MaxSessions: ti.MaxSessionCount, Flags: ti.Flags}, nil
}

func (m *cgoModule) OpenSession(slot uint) (sessionHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	h, err := m.c().OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	return sessionHandle(h), convErr(err)
}

func (m *cgoModule) CloseSession(h sessionHandle) error {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	return convErr(m.c().CloseSession(p11.SessionHandle(h)))
}

func (m *cgoModule) SessionState(h sessionHandle) (uint, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	si, err := m.c().GetSessionInfo(p11.SessionHandle(h))
	return si.State, convErr(err)
}

func (m *cgoModule) Login(h sessionHandle, pin string) error {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	return convErr(m.c().Login(p11.SessionHandle(h), p11.CKU_USER, pin))
}

// ulongAttrs are the attribute types whose values are CK_ULONG: this package encodes
// them as 8 bytes little-endian, the C library in native size and order.
var ulongAttrs = map[uint]bool{ckaClass: true, ckaKeyType: true, ckaCertificateType: true, ckaValueLen: true, ckaModulusBits: true}

func toP11(attrs []attribute) []*p11.Attribute {
	out := make([]*p11.Attribute, len(attrs))
	for i, a := range attrs {
		if ulongAttrs[a.Type] {
			v, _ := decodeULong(a.Value)
			out[i] = p11.NewAttribute(a.Type, v)
			continue
		}
		out[i] = p11.NewAttribute(a.Type, a.Value)
	}
	return out
}

func (m *cgoModule) FindObjects(h sessionHandle, tmpl []attribute) ([]objectHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	sh := p11.SessionHandle(h)
	if err := m.c().FindObjectsInit(sh, toP11(tmpl)); err != nil {
		return nil, convErr(err)
	}
	var out []objectHandle
	var ferr error
	for {
		objs, _, err := m.c().FindObjects(sh, 16)
		if err != nil {
			ferr = convErr(err)
			break
		}
		if len(objs) == 0 {
			break
		}
		for _, o := range objs {
			out = append(out, objectHandle(o))
		}
	}
	if err := m.c().FindObjectsFinal(sh); err != nil && ferr == nil {
		ferr = convErr(err)
	}
	return out, ferr
}

func (m *cgoModule) Attributes(h sessionHandle, o objectHandle, types []uint) (map[uint][]byte, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	req := make([]*p11.Attribute, len(types))
	for i, t := range types {
		req[i] = p11.NewAttribute(t, nil)
	}
	got, err := m.c().GetAttributeValue(p11.SessionHandle(h), p11.ObjectHandle(o), req)
	if err != nil {
		return nil, convErr(err)
	}
	out := make(map[uint][]byte, len(got))
	for _, a := range got {
		v := a.Value
		if ulongAttrs[a.Type] {
			var n uint64
			switch len(v) {
			case 8:
				n = binary.NativeEndian.Uint64(v)
			case 4:
				n = uint64(binary.NativeEndian.Uint32(v))
			}
			v = ulongAttr(a.Type, uint(n)).Value
		}
		out[a.Type] = v
	}
	return out, nil
}

func toMech(mm mechanism) []*p11.Mechanism {
	switch {
	case mm.PSS != nil:
		return []*p11.Mechanism{p11.NewMechanism(mm.Type, p11.NewPSSParams(mm.PSS.Hash, mm.PSS.MGF, mm.PSS.SaltLen))}
	case mm.OAEP != nil:
		src := uint(0)
		if len(mm.OAEP.Label) > 0 {
			src = ckzDataSpecified
		}
		return []*p11.Mechanism{p11.NewMechanism(mm.Type, p11.NewOAEPParams(mm.OAEP.Hash, mm.OAEP.MGF, src, mm.OAEP.Label))}
	case mm.ECDH != nil:
		return []*p11.Mechanism{p11.NewMechanism(mm.Type, p11.NewECDH1DeriveParams(mm.ECDH.KDF, nil, mm.ECDH.PublicData))}
	case mm.Raw != nil:
		return []*p11.Mechanism{p11.NewMechanism(mm.Type, mm.Raw)}
	}
	return []*p11.Mechanism{p11.NewMechanism(mm.Type, nil)}
}

func (m *cgoModule) Sign(h sessionHandle, mm mechanism, o objectHandle, data []byte) ([]byte, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	sh := p11.SessionHandle(h)
	if err := m.c().SignInit(sh, toMech(mm), p11.ObjectHandle(o)); err != nil {
		return nil, convErr(err)
	}
	sig, err := m.c().Sign(sh, data)
	return sig, convErr(err)
}

func (m *cgoModule) Decrypt(h sessionHandle, mm mechanism, o objectHandle, data []byte) ([]byte, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	sh := p11.SessionHandle(h)
	if err := m.c().DecryptInit(sh, toMech(mm), p11.ObjectHandle(o)); err != nil {
		return nil, convErr(err)
	}
	pt, err := m.c().Decrypt(sh, data)
	return pt, convErr(err)
}

func (m *cgoModule) DeriveKey(h sessionHandle, mm mechanism, base objectHandle, tmpl []attribute) (objectHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	o, err := m.c().DeriveKey(p11.SessionHandle(h), toMech(mm), p11.ObjectHandle(base), toP11(tmpl))
	return objectHandle(o), convErr(err)
}

func (m *cgoModule) GenerateKeyPair(h sessionHandle, mm mechanism, pub, priv []attribute) (objectHandle, objectHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	pu, pr, err := m.c().GenerateKeyPair(p11.SessionHandle(h), toMech(mm), toP11(pub), toP11(priv))
	return objectHandle(pu), objectHandle(pr), convErr(err)
}

func (m *cgoModule) CreateObject(h sessionHandle, tmpl []attribute) (objectHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	o, err := m.c().CreateObject(p11.SessionHandle(h), toP11(tmpl))
	return objectHandle(o), convErr(err)
}

func (m *cgoModule) DestroyObject(h sessionHandle, o objectHandle) error {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	return convErr(m.c().DestroyObject(p11.SessionHandle(h), p11.ObjectHandle(o)))
}

func (m *cgoModule) WrapKey(h sessionHandle, mm mechanism, wrapping, key objectHandle) ([]byte, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	out, err := m.c().WrapKey(p11.SessionHandle(h), toMech(mm), p11.ObjectHandle(wrapping), p11.ObjectHandle(key))
	return out, convErr(err)
}

func (m *cgoModule) UnwrapKey(h sessionHandle, mm mechanism, unwrapping objectHandle, wrapped []byte, tmpl []attribute) (objectHandle, error) {
	m.lib.rw.RLock()
	defer m.lib.rw.RUnlock()
	o, err := m.c().UnwrapKey(p11.SessionHandle(h), toMech(mm), p11.ObjectHandle(unwrapping), wrapped, toP11(tmpl))
	return objectHandle(o), convErr(err)
}
