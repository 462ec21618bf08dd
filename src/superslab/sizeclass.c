/* sizeclass.c - the size class table.
 *
 * Classes (96):
 *   16, 32, 48, ..., 128              16-byte steps (8 classes)
 *   then 8 classes per power of two   144, 160, ..., 256, 288, ..., 512, ...
 *                                     up to 256 KiB (NS_SMALL_MAX)
 * Why: every class is a multiple of 16, so every block of 16 bytes or more
 * is 16-byte aligned (max_align_t) and a free block has room for its two
 * words (next pointer, double-free key); requests of 1..16 bytes share the
 * 16-byte class.  Above 128 bytes, eight steps per doubling bound the waste
 * of a request to less than 1/9 of the block (11.1 %, under the 12.5 %
 * target); between 65 and 128 bytes the 16-byte alignment floor dominates
 * (at most 15 bytes, 18.75 % at 65 -> 80).  Power-of-two classes exist, so
 * an aligned request always finds a class whose size is a multiple of the
 * alignment within one doubling.
 *
 * sizeclass_units: the slab length in 64 KiB units: the smallest run that
 * wastes at most 12.5 % of itself at its end (at least one block).  Small
 * classes get one unit; a big class gets a few blocks, not a megabyte of
 * them, so a program that touches many big classes once stays small.
 *
 * The tables are constants so that malloc can use them before start-up ran;
 * tests/unit/test_sizeclass.c recomputes them from the rule above.
 */
#include "superslab.h"

const uint8_t sizeclass_lut[NS_LUT_MAX / 16 + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23,
    23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27,
    27, 28, 28, 28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31,
    31,
};

const uint32_t sizeclass_size[NS_CLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128,
    144, 160, 176, 192, 208, 224, 240, 256,
    288, 320, 352, 384, 416, 448, 480, 512,
    576, 640, 704, 768, 832, 896, 960, 1024,
    1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048,
    2304, 2560, 2816, 3072, 3328, 3584, 3840, 4096,
    4608, 5120, 5632, 6144, 6656, 7168, 7680, 8192,
    9216, 10240, 11264, 12288, 13312, 14336, 15360, 16384,
    18432, 20480, 22528, 24576, 26624, 28672, 30720, 32768,
    36864, 40960, 45056, 49152, 53248, 57344, 61440, 65536,
    73728, 81920, 90112, 98304, 106496, 114688, 122880, 131072,
    147456, 163840, 180224, 196608, 212992, 229376, 245760, 262144,
};

const uint8_t sizeclass_units[NS_CLASSES] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 1, 1,
    2, 1, 3, 2, 3, 1, 1, 1, 3, 2, 3, 3, 5, 1, 1, 1,
    5, 4, 3, 3, 5, 2, 2, 2, 5, 5, 3, 3, 7, 4, 4, 4,
};
