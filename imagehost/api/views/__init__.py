"""REST API views by area: ``base``, ``uploads`` (images, jobs), ``library`` (albums, pictures), ``links``, ``tokens`` (decode, inspect).

Views parse, call one service or selector and serialise; no domain rules here.
"""
