/* The error table: every code has a distinct name and message. */
#include "t.h"

static const int codes[] = {
#define X(name, code, msg) code,
    SHMCHAN_ERRNO_MAP(X)
#undef X
};

TEST(error_table_complete)
{
    size_t n = sizeof(codes) / sizeof(codes[0]);
    T_TRUE(n >= 20);
    for (size_t i = 0; i < n; i++) {
        T_TRUE(codes[i] < 0);
        T_TRUE(strncmp(shmchan_errname(codes[i]), "SHMCHAN_E", 9) == 0);
        T_TRUE(strcmp(shmchan_strerror(codes[i]), "unknown shmchan error") != 0);
        for (size_t j = i + 1; j < n; j++) {
            T_TRUE(codes[i] != codes[j]);
            T_TRUE(strcmp(shmchan_errname(codes[i]), shmchan_errname(codes[j])) != 0);
            T_TRUE(strcmp(shmchan_strerror(codes[i]), shmchan_strerror(codes[j])) != 0);
        }
    }
    T_EQ_STR(shmchan_errname(SHMCHAN_ETIMEDOUT), "SHMCHAN_ETIMEDOUT");
    T_EQ_STR(shmchan_strerror(SHMCHAN_OK), "success");
}

TEST(error_unknown_code)
{
    T_EQ_STR(shmchan_strerror(-12345), "unknown shmchan error");
    T_EQ_STR(shmchan_errname(42), "SHMCHAN_EUNKNOWN");
}

TEST(version_reported)
{
    int a = -1, b = -1, c = -1;
    T_EQ_STR(shmchan_version(&a, &b, &c), SHMCHAN_VERSION_STRING);
    T_EQ_U64(a, SHMCHAN_VERSION_MAJOR);
    T_EQ_U64(b, SHMCHAN_VERSION_MINOR);
    T_EQ_U64(c, SHMCHAN_VERSION_PATCH);
    T_TRUE(shmchan_version(NULL, NULL, NULL) != NULL);
    T_TRUE(shmchan_layout_version() >= 1);
}
