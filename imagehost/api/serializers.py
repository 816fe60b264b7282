"""Request and response shapes of the REST API (validation of shape only; rules live in services)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from imagehost import selectors
from imagehost.budgets import LinkBudget
from imagehost.views.http import REQUESTABLE_FORMATS
from imagehost.models import SLUG_RE, Album, EncodeJob, EncodeKind, JobStatus, Picture, ShortLink, Visibility

from imagehost.services import tokens, workers
from imagehost.services.workers import WORKER_DOWN_MESSAGE

from . import absolute_urls

TOKEN_HELP = "An image token: URL-safe base64 text (A-Z a-z 0-9 - _)."
#: A new custom slug: 3-40 characters, first a letter or digit (services.links.CUSTOM_SLUG_RE);
#: an owner's existing link is named by any slug the site made (models.SLUG_RE), checked there.
SLUG_PATTERN = SLUG_RE.pattern


class StrictCharField(serializers.CharField):
    """A text field that refuses JSON numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RefusesUnknownFields:
    # A request body's field that the serializer does not have is a 400, as an unknown query
    # parameter is (ApiView.initial), not dropped: {"expire_at": ...} made a link that never
    # expires. (Fields it has but only shows, read-only ones, are still ignored.) A comment, not
    # a docstring: drf-spectacular would publish it as the description of every body using it.

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name or "(empty)": ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


# --- errors ------------------------------------------------------------------------
class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status code.")
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `not_found`, `invalid`.")
    message = serializers.CharField(help_text="A clear, human-readable message.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors by field name (validation errors only).",
    )
    retry_after = serializers.IntegerField(required=False, help_text="Seconds to wait (429 only).")


class ErrorSerializer(serializers.Serializer):
    """Every error answer has this shape."""

    error = ErrorBodySerializer()


# --- pictures ------------------------------------------------------------------------
class PictureSerializer(serializers.ModelSerializer):
    album = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True, help_text="The album's id, or null.")
    model = serializers.CharField(source="model_name", read_only=True, help_text="The codec model that encoded it.")
    chars = serializers.IntegerField(read_only=True, help_text="Length of the token in characters.")
    token = serializers.CharField(read_only=True, help_text=TOKEN_HELP)
    token_url = serializers.SerializerMethodField(help_text="URL that carries the token; GET decodes it.")
    short_url = serializers.SerializerMethodField(help_text="Short URL answering with the image, if one exists.")
    taken_down = serializers.SerializerMethodField(
        help_text="The token is blocked (a takedown): its URLs answer 410 Gone; only its owner sees it listed."
    )

    class Meta:
        model = Picture
        fields = [
            "id", "title", "album", "token", "token_url", "short_url",
            "width", "height", "chars", "model", "taken_down", "created",
        ]
        read_only_fields = fields

    def get_token_url(self, obj: Picture) -> str:
        return absolute_urls.token_url(self.context["request"], obj.token)

    def get_taken_down(self, obj: Picture) -> bool:
        annotated = getattr(obj, "taken_down", None)  # selectors.with_takedowns
        return annotated if annotated is not None else tokens.is_blocked(obj.token_sha256)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_short_url(self, obj: Picture) -> str | None:
        slug = selectors.link_slug_of(obj)  # read with the list (``selectors.with_link_slugs``), else looked up
        return absolute_urls.short_url(self.context["request"], slug) if slug else None


class PictureUpdateSerializer(RefusesUnknownFields, serializers.Serializer):
    """A picture's new title and/or album; other fields are refused (400)."""

    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    album = StrictCharField(
        max_length=60, required=False, allow_null=True, help_text="Album id to move the picture to; null: none."
    )


class PictureDeleteQuerySerializer(serializers.Serializer):
    links = serializers.ChoiceField(choices=["delete", "keep"], default="delete", required=False, help_text=(
        "`delete` (default): the picture's short links go too and answer 404; `keep`: they keep working."))


# --- jobs and uploads ------------------------------------------------------------------
class UploadSerializer(RefusesUnknownFields, serializers.Serializer):
    """An upload: the image and its options; other fields are refused (400)."""

    file = serializers.FileField(
        required=False, help_text="The image (multipart). Or send the raw image as the request body."
    )
    album = StrictCharField(max_length=60, required=False, help_text="Id (slug) of one of your albums.")
    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    max_chars = serializers.IntegerField(
        required=False, min_value=16, max_value=10_000_000, help_text="Upper bound on the token length."
    )
    budget = serializers.ChoiceField(
        choices=LinkBudget.choices, required=False,
        help_text="How far the link must travel: `chat` (token URL up to 4,000 characters), `proxy` (8,000) "
        "or `best` (no bound). Sets `max_chars` from this server's token URL; give one or the other.",
    )
    model = StrictCharField(max_length=40, required=False, help_text="Codec model; default: the site's.")
    kind = serializers.ChoiceField(
        choices=EncodeKind.choices, required=False, default=EncodeKind.VAE,
        help_text="`vae`: a VAE token (the shortest link; small text and digits may change). "
        "`avif`: the image itself as AVIF (sharp text and digits, a longer link; `model` is ignored).",
    )
    wait = serializers.IntegerField(
        required=False, min_value=0, max_value=30, default=0,
        help_text="Seconds to wait for the encoding before answering (for one-shot clients such as ShareX).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "budget" in attrs and "max_chars" in attrs:
            raise serializers.ValidationError({"budget": ["Give `budget` or `max_chars`, not both."]})
        return attrs


class UploadQuerySerializer(UploadSerializer):
    """Options as query parameters (for raw-body uploads)."""

    file = None  # type: ignore[assignment]


class WorkerNoticeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="`worker_unavailable`.")
    message = serializers.CharField()


class NearDuplicateSerializer(serializers.Serializer):
    picture = serializers.IntegerField(help_text="Id of the owner's earlier picture.")
    title = serializers.CharField()
    url = serializers.CharField(help_text="That picture's page.")
    score = serializers.FloatField(help_text="Cosine similarity of the two pictures' embeddings.")


class QueuePlaceSerializer(serializers.Serializer):
    ahead = serializers.IntegerField(help_text="Unfinished uploads sent before this one (an upper bound: fair order may pass some).")
    position = serializers.IntegerField(help_text="`ahead` + 1; 0 while this job is encoding.")
    estimate_s = serializers.FloatField(
        allow_null=True, help_text="Rough seconds until done, from the recent mean encode time; null with no history."
    )


class CodedSizeSerializer(serializers.Serializer):
    width = serializers.IntegerField()
    height = serializers.IntegerField()


class JobPictureSerializer(PictureSerializer):
    """A job's picture: its album only for its owner (the job id lets its holder see one upload,
    and an unlisted album's slug would open the whole album)."""

    def to_representation(self, instance: Picture) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = self.context["request"].user
        if not (user.is_authenticated and instance.owner_id == user.pk):
            data["album"] = None
        return data


class JobSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=JobStatus.choices, read_only=True)
    error = serializers.CharField(read_only=True, help_text="Why the job failed (empty otherwise).")
    status_url = serializers.SerializerMethodField(help_text="Poll this URL for the job's status.")
    picture = JobPictureSerializer(
        read_only=True, allow_null=True,
        help_text="The result, once status is `done`; null again once the picture has been deleted "
        "(`album` is null for anyone but its owner).",
    )
    worker = serializers.SerializerMethodField(
        help_text="While the job waits and no encode worker is running: a notice (the upload is kept); else null."
    )
    duplicate = serializers.SerializerMethodField(
        help_text="For the signed-in owner of a done job: one of their pictures this one nearly duplicates; else null."
    )
    similarity_pending = serializers.SerializerMethodField(
        help_text="True for a few seconds after the owner's job is done, until the near-duplicate check has run."
    )
    queue = serializers.SerializerMethodField(help_text="While queued or encoding: where the job stands; else null.")
    coded = serializers.SerializerMethodField(
        help_text="When done: the size the picture was coded at (`width`, `height`); smaller than the picture's "
        "size when `max_chars` or `budget` made the encoder shrink it, 16 for a side under 16 pixels. Else null."
    )
    short_url = serializers.SerializerMethodField(help_text=(
        "The upload's short link: at once for signed-in uploads (503 + Retry-After, or an \"encoding…\" page, until "
        "the picture exists; 410 if the encoding fails), when done for anonymous ones; else null."))

    class Meta:
        model = EncodeJob
        fields = [
            "id", "status", "error", "attempts", "status_url", "created", "finished", "picture", "worker",
            "duplicate", "similarity_pending", "queue", "coded", "short_url",
        ]
        read_only_fields = fields

    def get_status_url(self, obj: EncodeJob) -> str:
        return absolute_urls.absolute(self.context["request"], "api:job-detail", obj.pk)

    @extend_schema_field(WorkerNoticeSerializer(allow_null=True))
    def get_worker(self, obj: EncodeJob) -> dict[str, str] | None:
        if obj.is_finished:
            return None
        if "worker_alive" not in self.context:  # one query per serialization, however many jobs
            self.context["worker_alive"] = workers.worker_alive()
        return None if self.context["worker_alive"] else {"code": "worker_unavailable", "message": WORKER_DOWN_MESSAGE}

    @extend_schema_field(NearDuplicateSerializer(allow_null=True))
    def get_duplicate(self, obj: EncodeJob) -> dict[str, Any] | None:
        row = selectors.near_duplicate_of(obj, self.context["request"].user)
        if row is None:
            return None
        return {
            "picture": row.duplicate_of_id, "title": row.duplicate_of.title,
            "url": self.context["request"].build_absolute_uri(reverse("picture", args=[row.duplicate_of_id])),
            "score": round(row.duplicate_score, 3),
        }

    def get_similarity_pending(self, obj: EncodeJob) -> bool:
        return selectors.awaiting_embedding(obj, self.context["request"].user)

    @extend_schema_field(QueuePlaceSerializer(allow_null=True))
    def get_queue(self, obj: EncodeJob) -> dict[str, Any] | None:
        place = selectors.queue_place(obj)
        if place is None:
            return None
        running = obj.status == JobStatus.RUNNING
        estimate = None if place.estimate_s is None else round(place.estimate_s, 1)
        return {"ahead": place.ahead, "position": 0 if running else place.ahead + 1, "estimate_s": estimate}

    @extend_schema_field(CodedSizeSerializer(allow_null=True))
    def get_coded(self, obj: EncodeJob) -> dict[str, int] | None:
        if obj.status != JobStatus.DONE or obj.picture is None:
            return None
        size = selectors.coded_size(obj.picture.token)
        return None if size is None else {"width": size[0], "height": size[1]}
    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_short_url(self, obj: EncodeJob) -> str | None:
        slug = selectors.reserved_slug_of(obj)
        if slug is None and obj.status == JobStatus.DONE and obj.picture is not None:
            slug = selectors.link_slug_of(obj.picture)
        return absolute_urls.short_url(self.context["request"], slug) if slug else None

    def to_representation(self, instance: EncodeJob) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.status != JobStatus.DONE:
            data["picture"] = None
        return data


class WarningSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable machine-readable code, e.g. `queue_unavailable`.")
    message = serializers.CharField()


class AcceptedJobSerializer(JobSerializer):
    """The upload's answer: the job, its secret `deletion_url`, and a `warning` when it is kept but
    could not be queued yet (the broker is down)."""

    # Not read_only: drf-spectacular marks every read-only field required, and this one is only
    # present sometimes. This serializer only writes answers, so nothing can set it.
    warning = WarningSerializer(required=False, help_text="Present when the upload is kept but not yet queued.")
    deletion_url = serializers.URLField(read_only=True, allow_null=True, help_text=(
        "Secret link that deletes this upload and its short links without signing in (GET: a confirm page; POST "
        "deletes). Only in this answer (a retry with the same Idempotency-Key gets a new one; null once used)."))

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "warning", "deletion_url"]
        read_only_fields = fields


# --- albums --------------------------------------------------------------------------
class AlbumSerializer(RefusesUnknownFields, serializers.ModelSerializer):
    """An album; to create one, send its title and visibility (other fields are refused: 400)."""

    id = serializers.CharField(source="slug", read_only=True, help_text="The album's unguessable id (its slug).")
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)
    title = StrictCharField(max_length=200)
    picture_count = serializers.SerializerMethodField()
    pictures_url = serializers.SerializerMethodField()

    class Meta:
        model = Album
        fields = ["id", "title", "visibility", "owner", "picture_count", "pictures_url", "created", "updated"]
        read_only_fields = ["id", "owner", "picture_count", "pictures_url", "created", "updated"]

    def get_picture_count(self, obj: Album) -> int:
        user = self.context["request"].user
        counted = getattr(obj, "owners_picture_count", None)  # selectors.albums_for_owner(with_counts=True)
        if counted is not None and obj.is_owned_by(user):
            return counted
        return selectors.album_pictures(obj, user).count()

    def get_pictures_url(self, obj: Album) -> str:
        return absolute_urls.absolute(self.context["request"], "api:album-pictures", obj.slug)


class AlbumUpdateSerializer(RefusesUnknownFields, serializers.Serializer):
    """An album's new title and/or visibility; other fields are refused (400)."""

    title = StrictCharField(max_length=200, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class AlbumPictureSerializer(PictureSerializer):
    """A picture as shown inside an album (to anyone who may see the album)."""

    class Meta(PictureSerializer.Meta):
        fields = ["id", "title", "token", "token_url", "width", "height", "chars", "model", "taken_down", "created"]
        read_only_fields = fields


# --- short links ------------------------------------------------------------------------
class LinkCreateSerializer(RefusesUnknownFields, serializers.Serializer):
    """A new short link: a token or one of your pictures, optionally a custom slug and an expiry;
    other fields are refused (400)."""

    token = StrictCharField(required=False, help_text=TOKEN_HELP, trim_whitespace=True)
    picture = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="Id of one of your pictures.")
    slug = serializers.RegexField(
        SLUG_PATTERN, required=False, help_text=(
            "Custom slug (signed-in users): 3-40 letters, digits, - and _, starting with a letter or digit; "
            "or the slug of one of your links of this token, to change its expiry."
        )
    )
    expires_at = serializers.DateTimeField(required=False, help_text="When the link stops working.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("token" in attrs) == ("picture" in attrs):
            raise serializers.ValidationError("Give exactly one of `token` or `picture`.")
        return attrs


class LinkSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The short URL; GET answers with the image.")
    token_url = serializers.SerializerMethodField()

    class Meta:
        model = ShortLink
        fields = ["slug", "url", "token", "token_url", "hits", "created", "expires_at"]
        read_only_fields = fields

    def get_url(self, obj: ShortLink) -> str:
        return absolute_urls.short_url(self.context["request"], obj.slug)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_token_url(self, obj: ShortLink) -> str | None:
        """Null while the link waits for its upload's encoding."""
        return absolute_urls.token_url(self.context["request"], obj.token) if obj.token else None


# --- tokens: decode and inspect -----------------------------------------------------------
class TokenSerializer(RefusesUnknownFields, serializers.Serializer):
    """A token; other fields are refused (400)."""

    token = StrictCharField(help_text=TOKEN_HELP, trim_whitespace=True)


class DecodeSerializer(TokenSerializer):
    """A token to decode, the output format and an optional width; other fields are refused (400)."""

    format = serializers.ChoiceField(choices=REQUESTABLE_FORMATS, default="webp", help_text="Output image format.")
    width = serializers.IntegerField(
        required=False, min_value=1, max_value=settings.EMMM_MAX_RENDER_WIDTH, help_text="Shrink to this width (never enlarges)."
    )


class TokenInfoSerializer(serializers.Serializer):
    """What a token's header says (without decoding it)."""

    version = serializers.IntegerField(help_text="Token format version.")
    model = serializers.CharField(help_text="Codec model that decodes it.")
    width = serializers.IntegerField(help_text="Width of the decoded image.")
    height = serializers.IntegerField(help_text="Height of the decoded image.")
    coded_width = serializers.IntegerField(required=False, help_text="Width the latent was coded at.")
    coded_height = serializers.IntegerField(required=False)
    latent_shape = serializers.ListField(child=serializers.IntegerField(), help_text="Channels, height, width.")
    payload_kind = serializers.CharField(required=False, help_text="How the latent is packed.")
    payload_bytes = serializers.IntegerField()
    chars = serializers.IntegerField(help_text="Length of the token.")
