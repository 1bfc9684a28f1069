"""The limits of Internet mail on what Firelane puts in a message's header.

RFC 5322 §2.1.1 (https://www.rfc-editor.org/rfc/rfc5322#section-2.1.1): a line of a message
MUST be at most 998 characters and SHOULD be at most 78, and a header field is one logical
line: a line break in a value would end the field and start another (header injection). The
subject is made single-line and cut at 998 characters; Python's `email` package then folds it
(and RFC 2047-encodes non-ASCII text) into physical lines of at most 78 characters.
"""

from __future__ import annotations

from integrations.limits import Limit

__all__ = ["SUBJECT"]

SUBJECT = Limit("email", "subject", 998, "https://www.rfc-editor.org/rfc/rfc5322#section-2.1.1",
                one_line=True)
