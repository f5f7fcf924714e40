//go:build cgo

package pack

func init() { PayloadCodecs = append(PayloadCodecs, PayloadCodec{"c", cZstd}) }
