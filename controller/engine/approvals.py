"""Approving a model version for Production, and withdrawing an approval.

Called by ``modelplane approve`` (and later by the server, for PR reviews and
authenticated requests). Who approves is a normalised identity; only the
version waiting for Production approval (the newest version in Staging) can be
approved; the project file may restrict who may approve. Every approval and
revocation is in the audit log. ``--as`` on the command line is a claim made by
whoever runs it: authenticated sources come with the controller's server.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass

from controller.api.identity import normalise
from controller.api.status import Stage
from controller.state.store import Store


class ApprovalRefused(Exception):
    pass


@dataclass(frozen=True)
class ApprovalResult:
    model: str
    version: int
    approver: str
    changed: bool  # False: already approved (or, revoking, nothing to withdraw)
    approvals: tuple[str, ...]


def _waiting(store: Store, model: str, ref: str) -> int:
    known = store.registry.models()
    if model not in known:
        close = difflib.get_close_matches(model, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (registered: {', '.join(known) or 'none yet'})"
        raise ApprovalRefused(f"no versions of a Model named {model!r} are registered{hint}")
    try:
        number = store.registry.resolve(model, ref)
    except KeyError as exc:
        raise ApprovalRefused(str(exc.args[0])) from None
    version = store.registry.version(model, number)
    if version is None:
        raise ApprovalRefused(f"{model} has no version {number}")
    if version.stage != Stage.STAGING:
        raise ApprovalRefused(
            f"{model} v{number} is in {version.stage}: only the version in Staging waits for approval"
        )
    newest = store.registry.in_stage(model, Stage.STAGING)
    if newest is not None and newest.version != number:
        raise ApprovalRefused(f"{model} v{number} was superseded by v{newest.version} in Staging; approve that one")
    return number


def approve(
    store: Store,
    model: str,
    ref: str,
    who: str,
    *,
    allowed: Collection[str] | None = None,
    revision: str | None = None,
) -> ApprovalResult:
    """Record ``who``'s approval of the version ``ref`` names (a number, a stage or an alias).
    ``allowed``: the normalised identities the project lets approve (None: anyone)."""
    approver = normalise(who)
    if allowed is not None and approver not in allowed:
        raise ApprovalRefused(f"{approver} may not approve: the project file lists who may ({len(allowed)} people)")
    number = _waiting(store, model, ref)
    changed = store.approvals.approve(model, number, approver, revision)
    return ApprovalResult(model, number, approver, changed, tuple(store.approvals.of(model, number)))


def revoke(store: Store, model: str, ref: str, who: str, *, revision: str | None = None) -> ApprovalResult:
    """Withdraw ``who``'s approval; a version already promoted stays where it is."""
    approver = normalise(who)
    try:
        number = store.registry.resolve(model, ref)
    except KeyError as exc:
        raise ApprovalRefused(str(exc.args[0])) from None
    changed = store.approvals.revoke(model, number, approver, revision)
    return ApprovalResult(model, number, approver, changed, tuple(store.approvals.of(model, number)))
