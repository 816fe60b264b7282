"""Site views, by area: ``uploads`` (upload page, result pages), ``images`` (decode, short
links), ``library`` (accounts, pictures, albums); ``errors`` (error pages and the middleware
that turns a ``ServiceError`` into one), ``http`` (query parsing, ETags), ``forms``,
``presentation`` (UI copy such as where a link fits)."""
