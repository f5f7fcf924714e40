package pack

// PayloadCodec is one zstd codec of this build, for tests that compare
// them: EncodePayload and DecodePayload with it instead of the default.
type PayloadCodec struct {
	Name string
	z    zstdCodec
}

func (c PayloadCodec) EncodePayload(dst, plain []byte, comp Compression) []byte {
	return encodePayload(c.z, dst, plain, comp)
}

func (c PayloadCodec) DecodePayload(dst, payload []byte, maxLen int) ([]byte, error) {
	return decodePayload(c.z, dst, payload, maxLen)
}

// PayloadCodecs are this build's codecs: the pure-Go one, and C zstd in a
// cgo build (export_cgo_test.go).
var PayloadCodecs = []PayloadCodec{{"go", goZstd}}

func (c PayloadCodec) DecodePayloadSteps(dst, payload []byte, maxLen int, decoded func([]byte)) ([]byte, error) {
	return decodePayloadSteps(c.z, dst, payload, maxLen, decoded)
}

// DecodeStep is decodeStep, for tests.
const DecodeStep = decodeStep
