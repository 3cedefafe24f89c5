package pkcs11

//lint:file-ignore SA1019 the fake module decrypts RSA PKCS#1 v1.5 as a token does, and encodes EC points of every curve, SM2's included, which crypto/ecdh does not know.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// fakeModule is a software token behind the module seam. It implements the mechanisms
// this package uses with Go crypto (and the vendor SM2 mechanisms of the "tass" and
// "sansec" presets), and lets a test inject what SoftHSM2 cannot produce: a device
// that is removed or broken, a token that forgets the login. It also fails the test
// if a session is ever used by two goroutines at once.
type fakeModule struct {
	t   testing.TB
	sm2 *SM2Config

	mu       sync.Mutex
	tokens   map[uint]*fakeToken
	sessions map[sessionHandle]*fakeSession
	objects  map[objectHandle]*fakeObject
	nextH    uint
	// fault, when set, is consulted before every call; a non-nil error is returned.
	fault func(op string) error
	// removed makes every call fail as if the device were unplugged.
	removed bool
	// atReinit changes the tokens at the next re-initialisation: the library's view of
	// a token that changed outside it is only renewed then.
	atReinit []func(map[uint]*fakeToken)

	calls, concurrentUse, logins, reinits atomic.Int64
}

type fakeToken struct {
	slot          uint
	label, serial string
	pin           string
	loggedIn      bool
	maxSessions   uint
	// hidden tokens are not listed until the library is re-initialised after they
	// come back (SoftHSM2 behaves so when its token directory is replaced).
	hidden, back bool
	// pinUnset is a token whose user PIN is not initialised: every login fails with
	// CKR_USER_PIN_NOT_INITIALIZED.
	pinUnset bool
}

type fakeSession struct {
	slot uint
	busy atomic.Int32
}

type fakeObject struct {
	slot    uint
	session sessionHandle // 0 for token objects
	attrs   map[uint][]byte
	key     crypto.Signer // private keys only
}

func newFakeModule(t testing.TB, sm2cfg *SM2Config) *fakeModule {
	return &fakeModule{t: t, sm2: sm2cfg, tokens: map[uint]*fakeToken{}, sessions: map[sessionHandle]*fakeSession{},
		objects: map[objectHandle]*fakeObject{}, nextH: 100}
}

func (m *fakeModule) addToken(slot uint, label, pin string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[slot] = &fakeToken{slot: slot, label: label, serial: fmt.Sprintf("fake%04d", slot), pin: pin}
}

// opener returns an opener that hands out m for one module path.
func (m *fakeModule) opener(path string) opener {
	return func(p string) (module, error) {
		if p != path {
			return nil, fmt.Errorf("cannot load the PKCS#11 library %s", p)
		}
		return m, nil
	}
}

func (m *fakeModule) setFault(f func(op string) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

func (m *fakeModule) setRemoved(v bool) {
	m.mu.Lock()
	m.removed = v
	if v {
		// Unplugging ends every session and the login.
		m.sessions = map[sessionHandle]*fakeSession{}
		for _, t := range m.tokens {
			t.loggedIn = false
		}
	}
	m.mu.Unlock()
}

// closeAllSessions is C_CloseAllSessions: every session ends and so does the login.
func (m *fakeModule) closeAllSessions() {
	m.mu.Lock()
	m.sessions = map[sessionHandle]*fakeSession{}
	for _, t := range m.tokens {
		t.loggedIn = false
	}
	m.mu.Unlock()
}

// logoutAll makes the token forget the login but keep the sessions.
func (m *fakeModule) logoutAll() {
	m.mu.Lock()
	for _, t := range m.tokens {
		t.loggedIn = false
	}
	m.mu.Unlock()
}

func (m *fakeModule) enter(op string) error {
	m.calls.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.removed {
		return ckrDeviceRemoved
	}
	if m.fault != nil {
		return m.fault(op)
	}
	return nil
}

// session marks h busy for the call; it fails the test if h is already busy.
func (m *fakeModule) session(h sessionHandle, needLogin bool) (*fakeSession, *fakeToken, func(), error) {
	m.mu.Lock()
	s, ok := m.sessions[h]
	var tok *fakeToken
	if ok {
		tok = m.tokens[s.slot]
	}
	m.mu.Unlock()
	if !ok {
		return nil, nil, nil, ckrSessionHandleInvalid
	}
	if !s.busy.CompareAndSwap(0, 1) {
		m.concurrentUse.Add(1)
		m.t.Errorf("fake token: session %d used by two goroutines at once", h)
		return nil, nil, nil, ckrOperationActive
	}
	done := func() { s.busy.Store(0) }
	if needLogin {
		m.mu.Lock()
		in := tok.loggedIn
		m.mu.Unlock()
		if !in {
			done()
			return nil, nil, nil, ckrUserNotLoggedIn
		}
	}
	return s, tok, done, nil
}

func (m *fakeModule) Close() error { return nil }

func (m *fakeModule) Reinitialize() error {
	m.reinits.Add(1)
	m.mu.Lock()
	if m.removed {
		m.mu.Unlock()
		return ckrDeviceRemoved
	}
	m.sessions = map[sessionHandle]*fakeSession{}
	for _, t := range m.tokens {
		t.loggedIn = false
		if t.back {
			t.hidden, t.back = false, false
		}
	}
	if len(m.atReinit) > 0 {
		m.atReinit[0](m.tokens)
		m.atReinit = m.atReinit[1:]
	}
	m.mu.Unlock()
	m.reloadObjects()
	return nil
}

// atNextReinit queues a change of the tokens that the library shows from its next
// re-initialisation not yet used by an earlier queued change.
func (m *fakeModule) atNextReinit(f func(map[uint]*fakeToken)) {
	m.mu.Lock()
	m.atReinit = append(m.atReinit, f)
	m.mu.Unlock()
}

// hideToken makes the token vanish (sessions end, handles die) until comeBack and a
// re-initialisation of the library.
func (m *fakeModule) hideToken(slot uint) {
	m.mu.Lock()
	m.tokens[slot].hidden = true
	m.tokens[slot].loggedIn = false
	m.sessions = map[sessionHandle]*fakeSession{}
	m.mu.Unlock()
}

func (m *fakeModule) comeBack(slot uint) {
	m.mu.Lock()
	m.tokens[slot].back = true
	m.mu.Unlock()
}

func (m *fakeModule) SlotList() ([]uint, error) {
	if err := m.enter("SlotList"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint
	for s, t := range m.tokens {
		if !t.hidden {
			out = append(out, s)
		}
	}
	return out, nil
}

func (m *fakeModule) TokenInfo(slot uint) (tokenInfo, error) {
	if err := m.enter("TokenInfo"); err != nil {
		return tokenInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[slot]
	if !ok {
		return tokenInfo{}, ckrSlotIDInvalid
	}
	return tokenInfo{Label: t.label, Serial: t.serial, Manufacturer: "fake", Model: "fake", MaxSessions: t.maxSessions}, nil
}

func (m *fakeModule) OpenSession(slot uint) (sessionHandle, error) {
	if err := m.enter("OpenSession"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[slot]; !ok || t.hidden {
		return 0, ckrSlotIDInvalid
	}
	m.nextH++
	h := sessionHandle(m.nextH)
	m.sessions[h] = &fakeSession{slot: slot}
	return h, nil
}

func (m *fakeModule) CloseSession(h sessionHandle) error {
	if err := m.enter("CloseSession"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[h]
	if !ok {
		return ckrSessionHandleInvalid
	}
	delete(m.sessions, h)
	for oh, o := range m.objects {
		if o.session == h {
			delete(m.objects, oh)
		}
	}
	last := true
	for _, o := range m.sessions {
		if o.slot == s.slot {
			last = false
		}
	}
	if last {
		m.tokens[s.slot].loggedIn = false
	}
	return nil
}

func (m *fakeModule) SessionState(h sessionHandle) (uint, error) {
	if err := m.enter("SessionState"); err != nil {
		return 0, err
	}
	_, tok, done, err := m.session(h, false)
	if err != nil {
		return 0, err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	if tok.loggedIn {
		return cksRWUserFunctions, nil
	}
	return 2, nil // CKS_RW_PUBLIC_SESSION
}

func (m *fakeModule) Login(h sessionHandle, pin string) error {
	if err := m.enter("Login"); err != nil {
		return err
	}
	_, tok, done, err := m.session(h, false)
	if err != nil {
		return err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	if tok.loggedIn {
		return ckrUserAlreadyLoggedIn
	}
	if tok.pinUnset {
		return ckrUserPINNotInitialized
	}
	if pin != tok.pin {
		return ckrPINIncorrect
	}
	tok.loggedIn = true
	m.logins.Add(1)
	return nil
}

func (m *fakeModule) FindObjects(h sessionHandle, tmpl []attribute) ([]objectHandle, error) {
	if err := m.enter("FindObjects"); err != nil {
		return nil, err
	}
	s, _, done, err := m.session(h, true)
	if err != nil {
		return nil, err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []objectHandle
	for oh, o := range m.objects {
		if o.slot != s.slot || (o.session != 0 && o.session != h) {
			continue
		}
		match := true
		for _, a := range tmpl {
			if v, ok := o.attrs[a.Type]; !ok || !bytes.Equal(v, a.Value) {
				match = false
				break
			}
		}
		if match {
			out = append(out, oh)
		}
	}
	return out, nil
}

func (m *fakeModule) object(h sessionHandle, oh objectHandle) (*fakeObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[oh]
	if !ok || (o.session != 0 && o.session != h) {
		return nil, ckrObjectHandleInvalid
	}
	return o, nil
}

func (m *fakeModule) Attributes(h sessionHandle, oh objectHandle, types []uint) (map[uint][]byte, error) {
	if err := m.enter("Attributes"); err != nil {
		return nil, err
	}
	_, _, done, err := m.session(h, true)
	if err != nil {
		return nil, err
	}
	defer done()
	o, err := m.object(h, oh)
	if err != nil {
		return nil, err
	}
	out := map[uint][]byte{}
	for _, t := range types {
		v, ok := o.attrs[t]
		if !ok {
			return nil, ckrAttributeTypeInvalid
		}
		out[t] = v
	}
	return out, nil
}

func (m *fakeModule) keyOf(h sessionHandle, oh objectHandle) (crypto.Signer, error) {
	o, err := m.object(h, oh)
	if err != nil {
		return nil, err
	}
	if o.key == nil {
		return nil, ckrKeyHandleInvalid
	}
	return o.key, nil
}

func hashOfCKM(ckm uint) crypto.Hash {
	switch ckm {
	case ckmSHA1:
		return crypto.SHA1
	case ckmSHA224:
		return crypto.SHA224
	case ckmSHA256:
		return crypto.SHA256
	case ckmSHA384:
		return crypto.SHA384
	case ckmSHA512:
		return crypto.SHA512
	}
	return 0
}

func (m *fakeModule) Sign(h sessionHandle, mm mechanism, oh objectHandle, data []byte) ([]byte, error) {
	if err := m.enter("Sign"); err != nil {
		return nil, err
	}
	_, _, done, err := m.session(h, true)
	if err != nil {
		return nil, err
	}
	defer done()
	key, err := m.keyOf(h, oh)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		switch mm.Type {
		case ckmRSAPKCS:
			return rsa.SignPKCS1v15(nil, k, 0, data)
		case ckmRSAPKCSPSS:
			hh := hashOfCKM(mm.PSS.Hash)
			if hh == 0 || len(data) != hh.Size() {
				return nil, ckrDataLenRange
			}
			return rsa.SignPSS(rand.Reader, k, hh, data, &rsa.PSSOptions{SaltLength: int(mm.PSS.SaltLen)})
		}
	case *ecdsa.PrivateKey:
		if mm.Type == ckmECDSA {
			r, s, err := ecdsa.Sign(rand.Reader, k, data)
			if err != nil {
				return nil, ckrFunctionFailed
			}
			size := (k.Curve.Params().BitSize + 7) / 8
			return append(r.FillBytes(make([]byte, size)), s.FillBytes(make([]byte, size))...), nil
		}
	case *sm2.PrivateKey:
		var der []byte
		switch {
		case m.sm2 != nil && mm.Type == m.sm2.Sign && mm.Type != 0:
			if len(data) != 32 {
				return nil, ckrDataLenRange
			}
			der, err = sm2.SignASN1(rand.Reader, k, data, nil)
		case m.sm2 != nil && mm.Type == m.sm2.SignWithZ && mm.Type != 0:
			der, err = sm2.SignASN1(rand.Reader, k, data, sm2.DefaultSM2SignerOpts)
		default:
			return nil, ckrMechanismInvalid
		}
		if err != nil {
			return nil, ckrFunctionFailed
		}
		if m.sm2.SignatureFormat == "raw" {
			var sig struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(der, &sig); err != nil {
				return nil, ckrFunctionFailed
			}
			return append(sig.R.FillBytes(make([]byte, 32)), sig.S.FillBytes(make([]byte, 32))...), nil
		}
		return der, nil
	}
	return nil, ckrMechanismInvalid
}

func (m *fakeModule) Decrypt(h sessionHandle, mm mechanism, oh objectHandle, data []byte) ([]byte, error) {
	if err := m.enter("Decrypt"); err != nil {
		return nil, err
	}
	_, _, done, err := m.session(h, true)
	if err != nil {
		return nil, err
	}
	defer done()
	key, err := m.keyOf(h, oh)
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		switch mm.Type {
		case ckmRSAPKCS:
			pt, err := rsa.DecryptPKCS1v15(nil, k, data)
			if err != nil {
				return nil, ckrEncryptedDataInvalid
			}
			return pt, nil
		case ckmRSAPKCSOAEP:
			if mm.OAEP.Hash != ckmSHA1 { // behave like SoftHSM2 2.6
				return nil, ckrArgumentsBad
			}
			pt, err := rsa.DecryptOAEP(crypto.SHA1.New(), nil, k, data, mm.OAEP.Label)
			if err != nil {
				return nil, ckrEncryptedDataInvalid
			}
			return pt, nil
		case ckmRSAX509:
			c := new(big.Int).SetBytes(data)
			if c.Cmp(k.N) >= 0 {
				return nil, ckrEncryptedDataInvalid
			}
			return new(big.Int).Exp(c, k.D, k.N).FillBytes(make([]byte, k.Size())), nil
		}
	case *sm2.PrivateKey:
		if m.sm2 == nil || mm.Type != m.sm2.Decrypt || mm.Type == 0 {
			return nil, ckrMechanismInvalid
		}
		var opts *sm2.DecrypterOpts
		switch m.sm2.CiphertextFormat {
		case "asn1":
			if len(data) == 0 || data[0] != 0x30 {
				return nil, ckrEncryptedDataInvalid
			}
			opts = sm2.ASN1DecrypterOpts
		case "c1c3c2":
			opts = sm2.NewPlainDecrypterOpts(sm2.C1C3C2)
		case "c1c2c3":
			opts = sm2.NewPlainDecrypterOpts(sm2.C1C2C3)
		}
		if m.sm2.CiphertextFormat != "asn1" && (len(data) == 0 || data[0] != 4) {
			return nil, ckrEncryptedDataInvalid
		}
		pt, err := k.Decrypt(nil, data, opts)
		if err != nil {
			return nil, ckrEncryptedDataInvalid
		}
		return pt, nil
	}
	return nil, ckrMechanismInvalid
}

func (m *fakeModule) DeriveKey(h sessionHandle, mm mechanism, base objectHandle, tmpl []attribute) (objectHandle, error) {
	if err := m.enter("DeriveKey"); err != nil {
		return 0, err
	}
	s, _, done, err := m.session(h, true)
	if err != nil {
		return 0, err
	}
	defer done()
	key, err := m.keyOf(h, base)
	if err != nil {
		return 0, err
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || mm.Type != ckmECDH1Derive || mm.ECDH == nil {
		return 0, ckrMechanismInvalid
	}
	priv, err := k.ECDH()
	if err != nil {
		return 0, ckrFunctionFailed
	}
	peer, err := priv.Curve().NewPublicKey(mm.ECDH.PublicData)
	if err != nil {
		return 0, ckrMechanismParamInvalid
	}
	secret, err := priv.ECDH(peer)
	if err != nil {
		return 0, ckrFunctionFailed
	}
	attrs := map[uint][]byte{ckaValue: secret}
	for _, a := range tmpl {
		attrs[a.Type] = a.Value
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextH++
	oh := objectHandle(m.nextH)
	m.objects[oh] = &fakeObject{slot: s.slot, session: h, attrs: attrs}
	return oh, nil
}

func (m *fakeModule) GenerateKeyPair(h sessionHandle, mm mechanism, pubT, privT []attribute) (objectHandle, objectHandle, error) {
	if err := m.enter("GenerateKeyPair"); err != nil {
		return 0, 0, err
	}
	s, _, done, err := m.session(h, true)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	pub, priv := map[uint][]byte{}, map[uint][]byte{}
	for _, a := range pubT {
		pub[a.Type] = a.Value
	}
	for _, a := range privT {
		priv[a.Type] = a.Value
	}
	pub[ckaClass] = ulongAttr(ckaClass, ckoPublicKey).Value
	priv[ckaClass] = ulongAttr(ckaClass, ckoPrivateKey).Value
	var key crypto.Signer
	switch {
	case mm.Type == ckmRSAPKCSKeyPairGen:
		bits, _ := decodeULong(pub[ckaModulusBits])
		k, err := rsa.GenerateKey(rand.Reader, int(bits))
		if err != nil {
			return 0, 0, ckrFunctionFailed
		}
		key = k
		for _, a := range []map[uint][]byte{pub, priv} {
			a[ckaKeyType] = ulongAttr(ckaKeyType, ckkRSA).Value
			a[ckaModulus] = k.N.Bytes()
			a[ckaPublicExponent] = big.NewInt(int64(k.E)).Bytes()
		}
	case mm.Type == ckmECKeyPairGen:
		c, err := curveFromParams(pub[ckaECParams])
		if err != nil {
			return 0, 0, ckrTemplateInconsistent
		}
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			return 0, 0, ckrFunctionFailed
		}
		key = k
		point, _ := asn1.Marshal(elliptic.Marshal(c, k.X, k.Y))
		pub[ckaECPoint] = point
		priv[ckaECParams] = pub[ckaECParams]
		pub[ckaKeyType] = ulongAttr(ckaKeyType, ckkEC).Value
		priv[ckaKeyType] = pub[ckaKeyType]
	case m.sm2 != nil && mm.Type == m.sm2.KeyGen:
		k, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			return 0, 0, ckrFunctionFailed
		}
		key = k
		pub[ckaECPoint] = elliptic.Marshal(k.Curve, k.X, k.Y) // a bare point, as some vendors return
		delete(priv, ckaECParams)
	default:
		return 0, 0, ckrMechanismInvalid
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextH += 2
	ph, kh := objectHandle(m.nextH-1), objectHandle(m.nextH)
	m.objects[ph] = &fakeObject{slot: s.slot, attrs: pub}
	m.objects[kh] = &fakeObject{slot: s.slot, attrs: priv, key: key}
	return ph, kh, nil
}

func (m *fakeModule) CreateObject(h sessionHandle, tmpl []attribute) (objectHandle, error) {
	if err := m.enter("CreateObject"); err != nil {
		return 0, err
	}
	s, _, done, err := m.session(h, true)
	if err != nil {
		return 0, err
	}
	defer done()
	attrs := map[uint][]byte{}
	for _, a := range tmpl {
		attrs[a.Type] = a.Value
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextH++
	oh := objectHandle(m.nextH)
	m.objects[oh] = &fakeObject{slot: s.slot, attrs: attrs}
	return oh, nil
}

func (m *fakeModule) DestroyObject(h sessionHandle, oh objectHandle) error {
	if err := m.enter("DestroyObject"); err != nil {
		return err
	}
	_, _, done, err := m.session(h, true)
	if err != nil {
		return err
	}
	defer done()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[oh]; !ok {
		return ckrObjectHandleInvalid
	}
	delete(m.objects, oh)
	return nil
}

// reloadObjects gives every token object a new handle, as a token restart does.
func (m *fakeModule) reloadObjects() {
	m.mu.Lock()
	defer m.mu.Unlock()
	fresh := map[objectHandle]*fakeObject{}
	for _, o := range m.objects {
		if o.session == 0 {
			m.nextH++
			fresh[objectHandle(m.nextH)] = o
		}
	}
	m.objects = fresh
}
