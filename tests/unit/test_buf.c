/* test_buf.c: the bounded buffer: caps, NUL termination, ownership transfer. */
#include "util/buf.h"

#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

Test(buf, append_keeps_nul_and_len)
{
    struct buf b;
    buf_init(&b, 64);
    cr_assert(buf_append(&b, "abc", 3));
    cr_assert(buf_puts(&b, "def"));
    cr_assert(buf_putc(&b, 'g'));
    cr_assert(buf_printf(&b, "%d-%s", 42, "x"));
    cr_assert_eq(b.len, 11);
    cr_assert_str_eq(b.data, "abcdefg42-x");
    buf_cleanup(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
}

Test(buf, cap_is_enforced_and_buffer_unchanged)
{
    struct buf b;
    buf_init(&b, 5);
    cr_assert(buf_append(&b, "12345", 5));
    cr_assert_not(buf_putc(&b, '6'), "one byte past the cap must fail");
    cr_assert_not(buf_printf(&b, "%s", "x"));
    cr_assert_eq(b.len, 5);
    cr_assert_str_eq(b.data, "12345");
    buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_not(buf_append(&b, "123456", 6));
    cr_assert_eq(b.len, 0);
    buf_cleanup(&b);
}

Test(buf, long_printf_grows)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert(buf_printf(&b, "<%s>", big));
    cr_assert_eq(b.len, 1001);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[1000], '>');
    cr_assert_eq(b.data[1001], '\0');
    buf_cleanup(&b);
}

Test(buf, steal_transfers_ownership)
{
    struct buf b;
    size_t len = 99;
    buf_init(&b, 100);
    char *empty = buf_steal(&b, &len);
    cr_assert_not_null(empty, "stealing an empty buffer gives an empty string");
    cr_assert_eq(len, 0);
    cr_assert_str_eq(empty, "");
    free(empty);
    cr_assert(buf_puts(&b, "hello"));
    char *s = buf_steal(&b, &len);
    cr_assert_str_eq(s, "hello");
    cr_assert_eq(len, 5);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    free(s);
    buf_cleanup(&b);
}

Test(buf, overflow_of_size_is_refused)
{
    struct buf b;
    buf_init(&b, SIZE_MAX);
    cr_assert(buf_putc(&b, 'a'));
    cr_assert_not(buf_reserve(&b, SIZE_MAX), "len + n must not wrap");
    buf_cleanup(&b);
}
