// Package imageio holds what the image readers share about reading.
package imageio

import (
	"errors"
	"fmt"
	"io"
)

// ReadAt fills b from r at off. An image too short to hold what its
// metadata says it holds is malformed: running into its end gives an
// error wrapping errFormat.
func ReadAt(r io.ReaderAt, b []byte, off int64, errFormat error) error {
	_, err := r.ReadAt(b, off)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %d bytes at %d are beyond its end", errFormat, len(b), off)
	}
	return err
}
