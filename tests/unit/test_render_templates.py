"""Rendering: every theme and a custom template render; mistakes name field and line; sandbox."""

from __future__ import annotations

import pytest

from campaign_support import make_composer, make_recipient
from dealmail.campaigns.render import (
    TemplateSource,
    available_themes,
    compile_templates,
    fill,
    inline_css,
    markdown_to_html,
)
from dealmail.campaigns.templating import TemplateProblem
from dealmail.campaigns.textify import html_to_text

CUSTOM = """<!DOCTYPE html>
<html><head><style>.hi { color: #123456; } @media (max-width: 600px) { .hi { color: red; } }
</style><title>{{ subject }}</title></head>
<body>
<table><tr><td class="hi">Hi {{ first_name | default("friend") }} from {{ attributes.city }}
</td></tr>
{% if coupon %}<tr><td><img src="{{ coupon.qr_src }}" width="{{ coupon.qr_size }}"
 height="{{ coupon.qr_size }}" alt="{{ coupon.qr_alt }}"> {{ coupon.short_code }}
</td></tr>{% endif %}
</table>
<p>{{ shop_name }}, {{ postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>
"""


@pytest.mark.parametrize("theme", available_themes())
def test_every_builtin_theme_renders_every_part(theme: str) -> None:
    composer = make_composer(
        TemplateSource(
            subject="Hello",
            preheader="Fresh bread for {{ first_name | default('you') }}",
            theme=theme,
            body_markdown="Dear **{{ first_name }}**,\n\n* rye\n* spelt",
        ),
        content={
            "heading": "Spring sale",
            "button_text": "Visit",
            "button_url": "https://sonne.example/",
            "image_url": "https://sonne.example/hero.jpg",
            "image_alt": "Our shop",
        },
    )
    recipient = make_recipient()
    message = composer.compose(recipient)
    html, text = message.html, message.text
    assert "<strong>Jürgen</strong>" in html
    assert "Spring sale" in html
    assert "Spring sale" in text
    assert "Fresh bread for Jürgen" in html
    assert 'src="https://sonne.example/hero.jpg"' in html
    assert "Hauptstraße 1, 10115 Berlin" in html
    assert "Hauptstraße 1, 10115 Berlin" in text
    assert "/u/" in html
    assert "/u/" in text
    coupon = composer.coupon_for(recipient)
    assert coupon is not None
    assert coupon.short_code in html
    assert coupon.short_code in text
    assert coupon.url in text
    assert f'src="cid:{message.inline_images[0].content_id}"' in html
    assert f'width="{coupon.size}"' in html
    assert 'alt="QR code of your coupon' in html
    assert "31 December 2026" in html  # expiry in the shop's time zone
    # CSS inlined once at compile time; the responsive @media rule kept in a <style>.
    assert 'style="' in html
    assert "@media" in html
    assert "<style>" in html
    assert "{{" not in html
    assert "{%" not in html


def test_custom_html_renders_with_fields_and_keeps_jinja_through_inlining() -> None:
    composer = make_composer(TemplateSource(subject="Hi", html_template=CUSTOM))
    message = composer.compose(make_recipient())
    assert "Hi Jürgen from Berlin" in message.html
    assert "color: #123456" in message.html  # inlined onto the td
    assert "<title>Hi</title>" in message.html
    assert "Hi Jürgen from Berlin" in message.text  # text part prepared from the same HTML
    assert "/u/" in message.text


def test_default_filter_covers_customers_without_names() -> None:
    composer = make_composer()
    message = composer.compose(make_recipient(first_name=None, last_name=None, attributes={}))
    assert message.subject.startswith("Hallo, your pastry deal")
    assert "<strong>there</strong>" in message.html
    assert message.to_header == "customer1@example.org"


def test_known_but_empty_field_renders_empty_and_missing_attribute_is_empty() -> None:
    composer = make_composer(
        TemplateSource(
            subject="x",
            html_template="<p>[{{ first_name }}][{{ attributes.shoe_size }}]</p>"
            '<a href="{{ unsubscribe_url }}">u</a>',
        )
    )
    message = composer.compose(make_recipient(first_name=None, attributes={}))
    assert "<p>[][]</p>" in message.html


@pytest.mark.parametrize(
    ("source", "field", "line"),
    [
        ("<p>\n\nHi {{ frist_name }}</p>", "frist_name", 3),
        ("<p>{{ first_name }}</p>\n{% if cupon %}x{% endif %}", "cupon", 2),
    ],
)
def test_unknown_field_error_names_field_and_line(source: str, field: str, line: int) -> None:
    html = source + '<a href="{{ unsubscribe_url }}">u</a>'
    with pytest.raises(TemplateProblem) as caught:
        compile_templates(TemplateSource(subject="x", html_template=html))
    assert caught.value.code == "unknown_field"
    assert field in caught.value.message
    assert f"line {line}" in caught.value.message
    assert caught.value.detail["line"] == line


def test_misspelt_attribute_is_caught_when_rendering_with_its_line() -> None:
    html = '<p>\n{{ coupon.shortcode }}</p><a href="{{ unsubscribe_url }}">u</a>'
    composer = make_composer(TemplateSource(subject="x", html_template=html))
    with pytest.raises(TemplateProblem) as caught:
        composer.compose(make_recipient())
    assert "unknown field 'shortcode' (did you mean 'coupon.short_code'?)" in caught.value.message
    assert "line 2" in caught.value.message


def test_subject_and_body_errors_say_which_part() -> None:
    with pytest.raises(TemplateProblem, match=r"subject line 1: unknown field 'nme'"):
        compile_templates(TemplateSource(subject="Hi {{ nme }}", theme="classic"))
    with pytest.raises(TemplateProblem, match=r"body line 3: unknown field 'frist_name'"):
        compile_templates(
            TemplateSource(subject="x", theme="classic", body_markdown="a\n\n{{ frist_name }}")
        )
    with pytest.raises(TemplateProblem, match=r"line 1: .*"):
        compile_templates(TemplateSource(subject="{% if %}", theme="classic"))


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ email.__class__ }}",
        "{{ attributes.__class__.__init__.__globals__ }}",
        "{{ first_name.format.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ deal.update({'title': 'free'}) }}",
        "{{ attributes.clear() }}",
    ],
)
def test_sandbox_refuses_escapes(attack: str) -> None:
    html = f'<p>{attack}</p><a href="{{{{ unsubscribe_url }}}}">u</a>'
    with pytest.raises(TemplateProblem) as caught:
        make_composer(TemplateSource(subject="x", html_template=html)).compose(make_recipient())
    assert caught.value.code in ("template_unsafe", "unknown_field")


def test_templates_cannot_load_files() -> None:
    html = '{% include "/etc/passwd" %}<a href="{{ unsubscribe_url }}">u</a>'
    with pytest.raises(TemplateProblem):
        make_composer(TemplateSource(subject="x", html_template=html)).compose(make_recipient())


def test_field_values_are_html_escaped() -> None:
    composer = make_composer()
    message = composer.compose(make_recipient(first_name="<script>alert(1)</script>"))
    assert "<script>alert(1)" not in message.html
    assert "&lt;script&gt;" in message.html


def test_markdown_keeps_jinja_intact() -> None:
    html = markdown_to_html('Hi {{ first_name | default("a_b *c*") }}, *welcome*')
    assert '{{ first_name | default("a_b *c*") }}' in html
    assert "<em>welcome</em>" in html


def test_inline_css_keeps_jinja_between_table_rows_and_in_attributes() -> None:
    source = (
        "<style>td { color: red; }</style><table>{% for x in attributes.items %}"
        '<tr><td title="{{ x }}">{{ x }}</td></tr>{% endfor %}</table>'
    )
    inlined = inline_css(source)
    assert "{% for x in attributes.items %}" in inlined
    assert "{% endfor %}" in inlined
    assert inlined.index("{% for") < inlined.index("<tr>")
    assert 'title="{{ x }}"' in inlined
    assert 'style="color: red;"' in inlined


def test_text_from_html_keeps_links() -> None:
    text = html_to_text('<p>Hello <a href="https://x.example/">shop</a></p><style>p{}</style>')
    assert text == "Hello shop (https://x.example/)\n"


def test_fill_is_pure_and_repeatable() -> None:
    compiled = compile_templates(TemplateSource(subject="x", theme="spotlight", body_markdown="b"))
    composer = make_composer(TemplateSource(subject="x", theme="spotlight", body_markdown="b"))
    recipient = make_recipient()
    coupon = composer.coupon_for(recipient)
    context = composer.context_for(recipient, coupon, qr_src="cid:a@b")
    assert fill(compiled, context) == fill(compiled, context)


@pytest.mark.parametrize(
    ("source", "where"),
    [
        (
            TemplateSource(
                subject="x", theme="classic", body_markdown="a\n\nb {{ coupon.shortcode }}"
            ),
            "body line 3",
        ),
        (
            TemplateSource(
                subject="x",
                html_template="<html><head><style>p { color: red; }</style></head>\n<body>\n\n"
                '<p>{{ coupon.shortcode }}</p><a href="{{ unsubscribe_url }}">u</a>',
            ),
            "html line 4",
        ),
    ],
)
def test_sample_checks_report_lines_of_what_the_owner_wrote(
    source: TemplateSource, where: str
) -> None:
    from dealmail.campaigns.checks import render_samples

    with pytest.raises(TemplateProblem) as caught:
        render_samples(make_composer(source))
    assert caught.value.message.startswith(f"{where}: unknown field 'shortcode'")
