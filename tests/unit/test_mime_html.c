/*
 * Unit tests: hark_html_to_text() (tags, scripts, blocks, lists, links,
 * entities, quotes, broken markup).
 */
#include "harness.h"

#include "hark/alloc.h"
#include "hark/text.h"
#include "../../adapters/imap/mime.h"

static void html_is(const char *html, const char *want)
{
    char *got = hark_html_to_text(html, strlen(html));

    assert_non_null(got);
    if (strcmp(got, want) != 0) {
        fail_msg("html:\n%s\nexpected:\n[%s]\ngot:\n[%s]", html, want, got);
    }
    assert_true(hark_utf8_valid(got, strlen(got)));
    hark_free(got);
}

static void test_basic(void **state)
{
    (void)state;
    html_is("", "");
    html_is("plain words", "plain words");
    html_is("<p>One</p><p>Two</p>", "One\n\nTwo");
    html_is("a<br>b<br/>c", "a\nb\nc");
    html_is("<div>a</div><div>b</div>", "a\nb");
    html_is("<b>bold</b> and <i>italic</i>", "bold and italic");
    html_is("  lots \n\t of    space  ", "lots of space");
}

static void test_hidden(void **state)
{
    (void)state;
    html_is("<html><head><title>T</title><style>p{}</style></head><body>x</body></html>", "x");
    html_is("a<script>alert('x')</script>b", "ab");
    html_is("<style>.a{}</style><p>visible</p>", "visible");
    html_is("a<!-- comment -->b", "ab");
}

static void test_entities(void **state)
{
    (void)state;
    html_is("&lt;tag&gt; &amp; &quot;q&quot; &eacute;t&eacute; &euro;5 &#8364; &#x263A;",
            "<tag> & \"q\" été €5 € ☺");
    html_is("a&nbsp;&nbsp;b", "a b");
}

static void test_lists_links(void **state)
{
    (void)state;
    html_is("<ul><li>one</li><li>two</li></ul>", "- one\n- two");
    html_is("<p>Items:</p><ol><li>a<ul><li>a1</li></ul></li><li>b</li></ol>",
            "Items:\n\n- a\n  - a1\n- b");
    html_is("<a href=\"https://x.example/p\">page</a>", "page <https://x.example/p>");
    html_is("<a href=\"https://x.example/\">https://x.example/</a>", "https://x.example/");
    html_is("<a href=\"mailto:a@b.example\">a@b.example</a>", "a@b.example");
    html_is("<a href=\"mailto:a@b.example\">write</a>", "write <a@b.example>");
    html_is("<a href=\"javascript:alert(1)\">js</a>", "js");
    html_is("<a href=\"cid:img1\"><img src=\"cid:img1\"></a>x", "x");
}

static void test_quotes_tables(void **state)
{
    (void)state;
    html_is("Yes<blockquote>old<br>older</blockquote>", "Yes\n\n> old\n> older");
    html_is("a<blockquote>b<blockquote>c</blockquote></blockquote>", "a\n\n> b\n> > c");
    html_is("<table><tr><td>Name</td><td>Qty</td></tr><tr><td>Pen</td><td>2</td></tr></table>",
            "Name Qty\nPen 2");
    html_is("<pre>  keep\n    indent</pre>", "  keep\n    indent");
}

static void test_broken(void **state)
{
    char *got;
    static const char bad[] = "<p>caf\xc3\xa9 \xff\xfe <b>unclosed <i>tags";
    (void)state;

    html_is("<p>unclosed <b>bold", "unclosed bold");
    got = hark_html_to_text(bad, sizeof(bad) - 1);
    assert_non_null(got);
    assert_true(hark_utf8_valid(got, strlen(got)));
    hark_free(got);
    /* Deep nesting is bounded, not a stack overflow. */
    {
        size_t n = 5000, i;
        char *s = malloc(n * 5 + 2);
        for (i = 0; i < n; i++) {
            memcpy(s + i * 5, "<div>", 5);
        }
        s[n * 5] = 'x';
        s[n * 5 + 1] = '\0';
        got = hark_html_to_text(s, n * 5 + 1);
        assert_non_null(got);
        hark_free(got);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_hidden),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_lists_links),
        cmocka_unit_test(test_quotes_tables),
        cmocka_unit_test(test_broken),
    };
    hark_alloc_init_json();
    return cmocka_run_group_tests_name("mime_html", tests, NULL, NULL);
}
