"""Container image references: parse `registry/repo[:tag][@sha256:…]` and spot ECR registries.

ECS accepts `repository-url/image:tag` and `repository-url/image@digest` (the digest form is
what the bot registers, so a tag moved later cannot change what runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
    r"/(?P<repository>[^:@]+)$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class ImageRef:
    repository_uri: str  # registry/repository, no tag or digest
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = self.repository_uri
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True)
class EcrRepository:
    account_id: str
    region: str
    name: str


def parse_image(image: str) -> ImageRef:
    """Split an image reference. A `:` before the last `/` is a registry port, not a tag."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag: str | None = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return ImageRef(repository_uri=name, tag=tag or None, digest=digest or None)


def ecr_repository(repository_uri: str) -> EcrRepository | None:
    """The ECR repository behind `<account>.dkr.ecr.<region>.amazonaws.com/<repo>`, else None."""
    match = _ECR.match(repository_uri)
    if match is None:
        return None
    return EcrRepository(match["account"], match["region"], match["repository"])


def is_digest(value: str) -> bool:
    return _DIGEST.match(value) is not None


def short_digest(digest: str | None) -> str:
    """`sha256:0123456789ab…` — the 12 hex digits Docker shows."""
    if not digest:
        return "—"
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:12]}…" if len(value) > 12 else digest


def natural_key(tag: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders v1.10.0 after v1.9.0."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", tag) if part
    )
