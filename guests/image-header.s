// The arm64 Image header (Linux's booting.rst) of pivisor's bare-metal
// guests (testguest, bench), linked at 0x80000: a loader places the image
// at its text_offset and enters at _start, which branches to `primary`
// (each guest's start.s).

.section .text.head, "ax"
.global _start
_start:
    b       primary
    .long   0
    .quad   0x80000                 // text_offset: linked at 0x80000
    .quad   _image_size
    .quad   0xa                     // LE, 4K, anywhere
    .quad   0, 0, 0
    .ascii  "ARM\x64"
    .long   0
