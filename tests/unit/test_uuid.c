/* test_uuid.c: uuid_v4 gives the 36-character text form of a version-4,
 * RFC 9562-variant UUID, and a different one each call. */
#include "util/crypto.h"

#include <criterion/criterion.h>

#include <string.h>

Test(uuid, text_form_version_and_variant)
{
    for (int i = 0; i < 1000; i++) {
        char u[UUID_TEXT_LEN + 1];
        memset(u, 'x', sizeof(u));
        cr_assert(uuid_v4(u));
        cr_assert_eq(strlen(u), UUID_TEXT_LEN);
        for (int k = 0; k < UUID_TEXT_LEN; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                cr_assert_eq(u[k], '-', "%s", u);
            else
                cr_assert(strchr("0123456789abcdef", u[k]) && u[k], "%s", u);
        }
        cr_assert_eq(u[14], '4', "version 4: %s", u);
        cr_assert(strchr("89ab", u[19]), "variant 10xx: %s", u);
    }
}

Test(uuid, different_each_time)
{
    char a[UUID_TEXT_LEN + 1], b[UUID_TEXT_LEN + 1];
    cr_assert(uuid_v4(a) && uuid_v4(b));
    cr_assert_str_neq(a, b);
}
