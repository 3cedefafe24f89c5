package pkcs11

// PKCS#11 v2.40 numbers this package uses. They are written out here rather than taken
// from github.com/miekg/pkcs11 because that package only builds with cgo, and everything
// except the adapter in module_cgo.go (the pool, the mechanisms, the tests' fake token)
// is plain Go.
const (
	ckoCertificate = 0x1
	ckoPublicKey   = 0x2
	ckoPrivateKey  = 0x3
	ckoSecretKey   = 0x4

	ckkRSA           = 0x0
	ckkEC            = 0x3
	ckkGenericSecret = 0x10

	ckcX509 = 0x0

	ckaClass           = 0x0
	ckaToken           = 0x1
	ckaPrivate         = 0x2
	ckaLabel           = 0x3
	ckaValue           = 0x11
	ckaCertificateType = 0x80
	ckaIssuer          = 0x81
	ckaSerialNumber    = 0x82
	ckaKeyType         = 0x100
	ckaSubject         = 0x101
	ckaID              = 0x102
	ckaSensitive       = 0x103
	ckaEncrypt         = 0x104
	ckaDecrypt         = 0x105
	ckaSign            = 0x108
	ckaVerify          = 0x10A
	ckaDerive          = 0x10C
	ckaModulus         = 0x120
	ckaModulusBits     = 0x121
	ckaPublicExponent  = 0x122
	ckaValueLen        = 0x161
	ckaExtractable     = 0x162
	ckaECParams        = 0x180
	ckaECPoint         = 0x181

	ckmRSAPKCSKeyPairGen = 0x0
	ckmRSAPKCS           = 0x1
	ckmRSAPKCSOAEP       = 0x9
	ckmRSAPKCSPSS        = 0xD
	ckmSHA1              = 0x220
	ckmSHA224            = 0x255
	ckmSHA256            = 0x250
	ckmSHA384            = 0x260
	ckmSHA512            = 0x270
	ckmECKeyPairGen      = 0x1040
	ckmECDSA             = 0x1041
	ckmECDH1Derive       = 0x1050

	ckgMGF1SHA1   = 0x1
	ckgMGF1SHA256 = 0x2
	ckgMGF1SHA384 = 0x3
	ckgMGF1SHA512 = 0x4
	ckgMGF1SHA224 = 0x5

	ckzDataSpecified = 0x1
	ckdNull          = 0x1

	cksROUserFunctions = 1
	cksRWUserFunctions = 3

	// ckEffectivelyInfinite and ckUnavailableInformation are the special values of
	// CK_TOKEN_INFO.ulMaxSessionCount.
	ckEffectivelyInfinite    = 0
	ckUnavailableInformation = ^uint(0)
)

// CK_RV values.
const (
	ckrOK                         ckError = 0x0
	ckrSlotIDInvalid              ckError = 0x3
	ckrGeneralError               ckError = 0x5
	ckrFunctionFailed             ckError = 0x6
	ckrArgumentsBad               ckError = 0x7
	ckrAttributeSensitive         ckError = 0x11
	ckrAttributeTypeInvalid       ckError = 0x12
	ckrDataInvalid                ckError = 0x20
	ckrDataLenRange               ckError = 0x21
	ckrDeviceError                ckError = 0x30
	ckrDeviceMemory               ckError = 0x31
	ckrDeviceRemoved              ckError = 0x32
	ckrEncryptedDataInvalid       ckError = 0x40
	ckrEncryptedDataLenRange      ckError = 0x41
	ckrFunctionNotSupported       ckError = 0x54
	ckrKeyHandleInvalid           ckError = 0x60
	ckrKeyTypeInconsistent        ckError = 0x63
	ckrKeyFunctionNotPermitted    ckError = 0x68
	ckrMechanismInvalid           ckError = 0x70
	ckrMechanismParamInvalid      ckError = 0x71
	ckrObjectHandleInvalid        ckError = 0x82
	ckrOperationActive            ckError = 0x90
	ckrPINIncorrect               ckError = 0xA0
	ckrPINExpired                 ckError = 0xA3
	ckrPINLocked                  ckError = 0xA4
	ckrSessionClosed              ckError = 0xB0
	ckrSessionCount               ckError = 0xB1
	ckrSessionHandleInvalid       ckError = 0xB3
	ckrTemplateInconsistent       ckError = 0xD1
	ckrTokenNotPresent            ckError = 0xE0
	ckrTokenNotRecognized         ckError = 0xE1
	ckrUserAlreadyLoggedIn        ckError = 0x100
	ckrUserNotLoggedIn            ckError = 0x101
	ckrUserPINNotInitialized      ckError = 0x102
	ckrCryptokiNotInitialized     ckError = 0x190
	ckrCryptokiAlreadyInitialized ckError = 0x191
)

var ckrNames = map[ckError]string{
	ckrSlotIDInvalid: "CKR_SLOT_ID_INVALID", ckrGeneralError: "CKR_GENERAL_ERROR",
	ckrFunctionFailed: "CKR_FUNCTION_FAILED", ckrArgumentsBad: "CKR_ARGUMENTS_BAD",
	ckrAttributeSensitive: "CKR_ATTRIBUTE_SENSITIVE", ckrAttributeTypeInvalid: "CKR_ATTRIBUTE_TYPE_INVALID",
	ckrDataInvalid: "CKR_DATA_INVALID", ckrDataLenRange: "CKR_DATA_LEN_RANGE",
	ckrDeviceError: "CKR_DEVICE_ERROR", ckrDeviceMemory: "CKR_DEVICE_MEMORY",
	ckrDeviceRemoved: "CKR_DEVICE_REMOVED", ckrEncryptedDataInvalid: "CKR_ENCRYPTED_DATA_INVALID",
	ckrEncryptedDataLenRange: "CKR_ENCRYPTED_DATA_LEN_RANGE", ckrFunctionNotSupported: "CKR_FUNCTION_NOT_SUPPORTED",
	ckrKeyHandleInvalid: "CKR_KEY_HANDLE_INVALID", ckrKeyTypeInconsistent: "CKR_KEY_TYPE_INCONSISTENT",
	ckrKeyFunctionNotPermitted: "CKR_KEY_FUNCTION_NOT_PERMITTED", ckrMechanismInvalid: "CKR_MECHANISM_INVALID",
	ckrMechanismParamInvalid: "CKR_MECHANISM_PARAM_INVALID", ckrObjectHandleInvalid: "CKR_OBJECT_HANDLE_INVALID",
	ckrOperationActive: "CKR_OPERATION_ACTIVE", ckrPINIncorrect: "CKR_PIN_INCORRECT",
	ckrPINExpired: "CKR_PIN_EXPIRED", ckrPINLocked: "CKR_PIN_LOCKED",
	ckrSessionClosed: "CKR_SESSION_CLOSED", ckrSessionCount: "CKR_SESSION_COUNT",
	ckrSessionHandleInvalid: "CKR_SESSION_HANDLE_INVALID", ckrTokenNotPresent: "CKR_TOKEN_NOT_PRESENT",
	ckrTokenNotRecognized: "CKR_TOKEN_NOT_RECOGNIZED", ckrUserAlreadyLoggedIn: "CKR_USER_ALREADY_LOGGED_IN",
	ckrUserNotLoggedIn: "CKR_USER_NOT_LOGGED_IN", ckrUserPINNotInitialized: "CKR_USER_PIN_NOT_INITIALIZED",
	ckrCryptokiNotInitialized: "CKR_CRYPTOKI_NOT_INITIALIZED", ckrCryptokiAlreadyInitialized: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
}
