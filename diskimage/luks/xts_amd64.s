//go:build !purego

#include "textflag.h"

// GF(2^128) doubling of an XTS tweak (as x/crypto/xts's mul2): the carry
// out of the low quadword goes into the high one, the carry out of the
// high one is reduced with 0x87.
DATA xtsMask<>+0x00(SB)/8, $0x0000000000000087
DATA xtsMask<>+0x08(SB)/8, $0x0000000000000001
GLOBL xtsMask<>(SB), (NOPTR+RODATA), $16

// double T (the tweak) in place, with MASK holding xtsMask and TMP free.
#define DOUBLE(T, MASK, TMP) \
	PSHUFD $0x13, T, TMP \
	PADDQ  T, T          \
	PSRAL  $31, TMP      \
	PAND   MASK, TMP     \
	PXOR   TMP, T

// TWEAK keeps the tweak X9 at off(SP) and doubles it.
#define TWEAK(off) \
	MOVOU X9, off(SP) \
	DOUBLE(X9, X10, X11)

// LOAD loads the block at off(DI) into B, XORed with its tweak at off(SP)
// and round key 0 in X8.
#define LOAD(off, B) \
	MOVOU off(SP), X11 \
	PXOR  X8, X11      \
	MOVOU off(DI), B   \
	PXOR  X11, B

// STORE XORs B with its tweak at off(SP) and stores it at off(DI).
#define STORE(off, B) \
	MOVOU off(SP), X11 \
	PXOR  X11, B       \
	MOVOU B, off(DI)

#define DEC8(K) \
	AESDEC K, X0 \
	AESDEC K, X1 \
	AESDEC K, X2 \
	AESDEC K, X3 \
	AESDEC K, X4 \
	AESDEC K, X5 \
	AESDEC K, X6 \
	AESDEC K, X7

#define DECLAST8(K) \
	AESDECLAST K, X0 \
	AESDECLAST K, X1 \
	AESDECLAST K, X2 \
	AESDECLAST K, X3 \
	AESDECLAST K, X4 \
	AESDECLAST K, X5 \
	AESDECLAST K, X6 \
	AESDECLAST K, X7

// func decryptSectorAsm(rounds int, dk *byte, buf *byte, blocks int, tweak *byte)
// Decrypts blocks (a multiple of 8) AES blocks of buf in place with the
// decryption round keys dk, the first block's tweak at tweak.
TEXT ·decryptSectorAsm(SB), NOSPLIT, $128-40
	MOVQ rounds+0(FP), CX
	MOVQ dk+8(FP), AX
	MOVQ buf+16(FP), DI
	MOVQ blocks+24(FP), DX
	MOVQ tweak+32(FP), SI
	MOVOU (SI), X9
	MOVOU xtsMask<>(SB), X10

loop:
	CMPQ DX, $0
	JEQ  done

	// The tweaks of the 8 blocks, kept on the stack.
	TWEAK(0)
	TWEAK(16)
	TWEAK(32)
	TWEAK(48)
	TWEAK(64)
	TWEAK(80)
	TWEAK(96)
	TWEAK(112)

	// Block i ^= tweak i ^ round key 0.
	MOVOU (AX), X8
	LOAD(0, X0)
	LOAD(16, X1)
	LOAD(32, X2)
	LOAD(48, X3)
	LOAD(64, X4)
	LOAD(80, X5)
	LOAD(96, X6)
	LOAD(112, X7)

	// Rounds 1 .. rounds-1, then the last.
	LEAQ 16(AX), BX
	MOVQ CX, R8
	DECQ R8

rounds:
	MOVOU (BX), X8
	DEC8(X8)
	ADDQ  $16, BX
	DECQ  R8
	JNZ   rounds
	MOVOU (BX), X8
	DECLAST8(X8)

	// Block i ^= tweak i, stored.
	STORE(0, X0)
	STORE(16, X1)
	STORE(32, X2)
	STORE(48, X3)
	STORE(64, X4)
	STORE(80, X5)
	STORE(96, X6)
	STORE(112, X7)

	ADDQ $128, DI
	SUBQ $8, DX
	JMP  loop

done:
	RET

// func invMixColumns(dst, src *byte)
// dst = AES InvMixColumns(src): a round key of the equivalent inverse
// cipher AESDEC uses.
TEXT ·invMixColumns(SB), NOSPLIT, $0-16
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVOU  (SI), X0
	AESIMC X0, X0
	MOVOU  X0, (DI)
	RET
