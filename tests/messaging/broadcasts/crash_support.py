"""Imported by the crash test's worker processes (SIYU_JOB_MODULES): small chunks, so a kill lands
inside a broadcast that is part sent."""

from siyu.messaging import broadcast_sending

broadcast_sending.CHUNK_SIZE = 10
