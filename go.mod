module signsvr.dev/signsvr

go 1.26.0

require (
	github.com/emmansun/gmsm v0.44.1
	github.com/miekg/pkcs11 v1.1.2
	go.mozilla.org/pkcs7 v0.10.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/text v0.44.0 // indirect
