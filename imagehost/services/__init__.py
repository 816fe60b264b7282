"""Commands: every change to the site's data goes through the modules of this package.

Views (site and REST API), tasks and the admin stay thin: they parse input, call one
function here and map ``errors.ServiceError.status`` to an HTTP answer.

==============  ==========================================================
``errors``      the refusals (``ServiceError`` and kin); imports nothing heavy
``uploads``     validating an upload and saving it as queued jobs
``jobs``        the encode-job lifecycle (state table in its docstring), sweeper
``tokens``      token checks (length, alphabet, takedown), blocks, inspect
``rendering``   decoding a token to image bytes, with the decode cache
``links``       short links
``library``     pictures and albums
==============  ==========================================================

Import the module you need (``from imagehost.services import jobs``): importing this
package imports none of them, so ``errors`` stays free of torch and the codec.
"""
