package pack_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/azfs/azfs/internal/formatdoc"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/chunker"
	"github.com/azfs/azfs/repo/pack"
)

// TestFormatDocVectors pins the first table of docs/format.md §16 (key set
// DataKey = 00…1f, IDKey = 20…3f, ChunkerSeed = 40…5f, IndexKey = 60…7f):
// what the code computes (key IDs, object IDs, sealed bytes, the trailer,
// footer and pack, the chunk sizes) must equal the document, and so must the
// intermediate values the document derives by its formulas (§4.3, §4.4, §11).
func TestFormatDocVectors(t *testing.T) {
	tables := formatdoc.Tables(t)
	if len(tables) != 3 {
		t.Fatalf("docs/format.md §16 has %d tables, want 3 (keys, owner, certificate)", len(tables))
	}
	rows := tables[0]
	want := func(key string) []byte { return formatdoc.Hex(t, formatdoc.Row(t, rows, key)) }
	check := func(what string, got, want []byte) {
		t.Helper()
		formatdoc.Check(t, what, got, want)
	}
	derive := func(ctx string, material []byte, n int) []byte {
		out := make([]byte, n)
		blake3.DeriveKey(ctx, material, out)
		return out
	}
	keyed := func(key, msg []byte) []byte {
		h, err := blake3.NewKeyed(key)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(msg)
		return h.Sum(nil)
	}
	ks := &keys.KeySet{Version: 1, Vault: "test", DataKey: keys.Secret(formatdoc.Counting(0x00)), IDKey: keys.Secret(formatdoc.Counting(0x20)), ChunkerSeed: keys.Secret(formatdoc.Counting(0x40)), IndexKey: keys.Secret(formatdoc.Counting(0x60))}

	// Sealers (§4.4): key IDs from the code, the rest by the formulas.
	content, index := ks.NewSealer(), ks.NewIndexSealer()
	for _, s := range []struct {
		name   string
		key    keys.Secret
		sealer *keys.Sealer
		row    string
	}{
		{"content", ks.DataKey, content, "content sealer: `derive_key(\"azfs 2026 key id v1\", DataKey, 32)`"},
		{"index", ks.IndexKey, index, "index sealer: `derive_key(\"azfs 2026 key id v1\", IndexKey, 32)`"},
	} {
		derived := want(s.row)
		check(s.name+" key derivation", derive("azfs 2026 key id v1", s.key[:], 32), derived)
		keyID := s.sealer.KeyID()
		check(s.name+" keyID", keyID[:], derived[:8])
		check(s.name+" sivKey", derive("azfs 2026 object siv v1", s.key[:], 32), want(s.name+" `sivKey`"))
		check(s.name+" encKey", derive("azfs 2026 object key v1", s.key[:], 32), want(s.name+" `encKey`"))
	}

	// Object IDs (§4.3).
	check("idKey(1)", derive("azfs 2026 object id v1", append(ks.IDKey[:], 1), 32), want("`idKey(1)` = `derive_key(\"azfs 2026 object id v1\", IDKey ‖ 01, 32)`"))
	hello := ks.ID(keys.KindData, []byte("hello"))
	check("ID(1, hello)", hello[:], want("`ID(1, \"hello\")`"))
	helloTree := ks.ID(keys.KindTree, []byte("hello"))
	check("ID(2, hello)", helloTree[:], want("`ID(2, \"hello\")` (same bytes, kind tree)"))

	// A content seal and its object key (§4.4).
	payload := []byte{0x00, 'h', 'e', 'l', 'l', 'o'}
	sealed := content.Seal(nil, keys.KindData, hello, payload)
	check("content seal", sealed, want("content seal, kind 1, `ID(1, \"hello\")`, payload `00 68 65 6c 6c 6f` (raw \"hello\"), 63 bytes"))
	objectKey := func(encKey []byte, sealed []byte) []byte { return keyed(encKey, sealed[9:41]) }
	contentEnc := derive("azfs 2026 object key v1", ks.DataKey[:], 32)
	k := want("object key `K` for that seal")
	check("content object key", objectKey(contentEnc, sealed), k)
	openWith(t, "content seal", k, keys.KindData, hello, sealed, payload)

	// The pack holding that blob: trailer, its seal, footer, name (§5, §6).
	w := pack.NewWriter()
	w.Add(keys.KindData, hello, sealed)
	name, whole, _ := w.Finish(ks, index)
	trailer := pack.EncodeTrailer([]pack.Entry{{Kind: keys.KindData, ID: hello, Offset: 0, Length: uint32(len(sealed))}})
	check("trailer", trailer, want("trailer of a pack holding only that blob (offset 0, length 63), 40 bytes"))
	tid := ks.ID(keys.KindTrailer, trailer)
	check("trailerID", tid[:], want("`trailerID = ID(3, trailer)`"))
	sealedTrailer := whole[len(sealed) : len(whole)-pack.FooterLen]
	check("index seal of the trailer", sealedTrailer, want("index seal of that trailer as `(3, trailerID)`, 97 bytes"))
	tk := want("object key `K` for the trailer seal")
	check("trailer object key", objectKey(derive("azfs 2026 object key v1", ks.IndexKey[:], 32), sealedTrailer), tk)
	openWith(t, "trailer seal", tk, keys.KindTrailer, tid, sealedTrailer, trailer)
	check("footer", whole[len(whole)-pack.FooterLen:], want("footer"))
	check("pack name", name[:], want("the whole pack = blob ‖ sealed trailer ‖ footer, 200 bytes; its name `BLAKE3(pack)`"))
	if len(whole) != 200 {
		t.Errorf("pack is %d bytes, docs/format.md §16 says 200", len(whole))
	}

	// The chunker (§11): the gear table by its formula, the chunk sizes by
	// the code.
	gear := derive("azfs 2025-01-01 repo/chunker FastCDC gear table v1", ks.ChunkerSeed[:], 2048)
	check("gear table bytes 0-7 and 2040-2047", append(gear[:8:8], gear[2040:]...), want("gear table bytes 0–7 / 2040–2047"))
	input := make([]byte, 1<<20)
	h := blake3.New()
	h.WriteString("azfs test input")
	if _, err := io.ReadFull(h.Digest(), input); err != nil {
		t.Fatal(err)
	}
	c := chunker.New(bytes.NewReader(input), ks.ChunkerSeed, chunker.Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10})
	buf := make([]byte, 256<<10)
	var sizes []string
	for {
		chunk, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, strconv.Itoa(len(chunk)))
	}
	doc := formatdoc.Row(t, rows, "chunk sizes, params 16/64/256 KiB, input = first 1 MiB of the BLAKE3 XOF of `\"azfs test input\"`")
	if got := strings.Join(sizes, " "); got != doc {
		t.Errorf("chunk sizes: code gives %s, docs/format.md §16 says %s", got, doc)
	}
}

// openWith opens sealed, a §4.4 seal of (kind, id) (a 41-byte header,
// then ciphertext and tag), with AES-256-GCM under the object key k, the
// zero nonce and the additional data "azfs-v1" ‖ kind ‖ id ‖ header, and
// checks its plaintext: the document's K is the key the seal was made with.
func openWith(t *testing.T, what string, k []byte, kind keys.Kind, id keys.ID, sealed, plain []byte) {
	t.Helper()
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	ad := append(append(append([]byte("azfs-v1"), byte(kind)), id[:]...), sealed[:41]...)
	got, err := g.Open(nil, make([]byte, 12), sealed[41:], ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("%s: the object key K does not open it: %x, %v", what, got, err)
	}
}
