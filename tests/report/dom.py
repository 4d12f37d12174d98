"""A minimal HTML tree built with the standard library, to read rendered reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID_TAGS = {"meta", "br", "hr", "img", "input", "link", "line"}


@dataclass
class Element:
    """One parsed element with its attributes and children."""

    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        """Return the text of this element and its descendants, entities decoded."""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return "".join(parts)

    def iter(self) -> Iterator[Element]:
        """Yield this element and every descendant element in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Return descendants with this tag whose attributes contain ``attrs``.

        ``class_`` matches one word of the ``class`` attribute.
        """
        expected_class = attrs.pop("class_", None)
        return [
            element
            for element in self.iter()
            if (tag is None or element.tag == tag)
            and all(element.attrs.get(k) == v for k, v in attrs.items())
            and (
                expected_class is None
                or expected_class in element.attrs.get("class", "").split()
            )
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        """Return the first matching descendant, failing the test when there is none."""
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs} in the page"
        return found[0]


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_page(page: str) -> Element:
    """Parse an HTML page, failing the test on a mismatched closing tag."""
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements at the end of the page"
    return builder.root


def table_rows(page: Element, table_id: str) -> list[list[str]]:
    """Return the text of each body cell of a table, row by row."""
    body = page.find("table", id=table_id).find("tbody")
    return [[td.text() for td in tr.find_all("td")] for tr in body.find_all("tr")]
