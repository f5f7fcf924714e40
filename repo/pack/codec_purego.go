//go:build !cgo

package pack

// defaultCodec is the pure-Go zstd in a build without cgo.
var defaultCodec zstdCodec = goZstd
