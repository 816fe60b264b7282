"""Admin for all models, with a takedown action (block the token by its hash).

Pictures and short links come from uploads and the site: the admin neither adds them nor
edits their tokens (a token is the picture itself) or who owns a row, and a slug it edits is
one the site can route. Moving and deleting a picture go through ``services.library``, as on
the site. Lists load no token and no upload's original, and take the same queries for any
number of rows."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import smart_split

from .services import accounts, library, tokens
from .models import SLUG_RE, Album, BlockedToken, EncodeJob, Picture, ShortLink
from .services.errors import ServiceError


#: Words of a list's search that are searched (each is one LIKE per search field: a thousand
#: made a query SQLite refuses, "Expression tree is too large").
MAX_SEARCH_WORDS = 10


class BoundedAdmin:
    """Every admin list (``test_admin_bounds`` checks each registered one): its search reads the
    first ``MAX_SEARCH_WORDS`` words, and its actions refuse a selected id that is not one of the
    model's ids, with a message (both were a 500)."""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        words = list(smart_split(search_term.replace("\x00", "")))  # PostgreSQL refuses a NUL
        if len(words) > MAX_SEARCH_WORDS:
            if request.method == "GET":  # an action's POST searches twice, then redirects to this GET
                messages.warning(request, f"Searched for the first {MAX_SEARCH_WORDS} words only.")
            words = words[:MAX_SEARCH_WORDS]
        return super().get_search_results(request, queryset, " ".join(words))

    def response_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponseBase | None:
        pk = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                pk.run_validators(pk.to_python(value))  # the range too: SQLite stores 64 bits
            except ValidationError:
                self.message_user(request, "A selected id is not the id of an item in this list: nothing was changed.",
                                  messages.ERROR)
                return None  # the list again, with the message
        return super().response_action(request, queryset)


@admin.action(description="Block (take down) the selected items' tokens")
def block_tokens(modeladmin, request, queryset) -> None:
    blocked = already = encoding = 0
    for obj in queryset:
        if not obj.token_sha256:  # a short link reserved for an upload still being encoded
            encoding += 1
            continue
        if BlockedToken.objects.filter(token_sha256=obj.token_sha256).exists():
            already += 1
            continue
        tokens.block_token(obj.token_sha256, by=request.user, reason=f"admin action on {obj._meta.verbose_name} {obj.pk}")
        blocked += 1
    skipped = [f"{already} already blocked" if already else "", f"{encoding} still encoding (no token yet)" if encoding else ""]
    messages.success(request, f"Blocked {blocked} token(s)." + "".join(f" Skipped: {s}." for s in skipped if s))


class NotAddedByHand:
    """Rows the site makes (from uploads and links), never the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ChangeListWithoutTokens(ChangeList):
    """A list's rows without their tokens, which no list shows (a token can be long)."""

    def get_queryset(self, request, exclude_parameters=None):
        return super().get_queryset(request, exclude_parameters).defer("token")


class TokensNotListed:
    """Lists (and their actions) of a model with a ``token`` column do not load it."""

    def get_changelist(self, request, **kwargs):
        return ChangeListWithoutTokens


class PictureForm(forms.ModelForm):
    """A picture goes only into one of its owner's albums (``library.move_picture_to_album``);
    its title is cleaned as the site cleans it (``library.clean_title``)."""

    def clean_title(self) -> str:
        return library.clean_title(self.cleaned_data["title"])

    def clean_album(self) -> Album | None:
        album = self.cleaned_data["album"]
        if album is not None and album.owner_id != self.instance.owner_id:
            raise forms.ValidationError("A picture goes only into its owner's albums: this album is another user's.")
        return album


@admin.register(Picture)
class PictureAdmin(BoundedAdmin, NotAddedByHand, TokensNotListed, admin.ModelAdmin):
    form = PictureForm
    list_display = ("id", "title", "owner", "album", "model_name", "width", "height", "created")
    list_select_related = ("owner", "album")
    search_fields = ("title", "token_sha256", "owner__username")
    list_filter = ("model_name",)
    # the owner, the model and the size describe the token, which is the picture
    readonly_fields = ("owner", "token", "token_sha256", "model_name", "width", "height", "created")
    raw_id_fields = ("album",)
    actions = [block_tokens]

    def save_model(self, request, obj, form, change) -> None:
        """A new album is the site's move: the album's lock first, the picture at its end."""
        if "album" in form.changed_data:
            library.move_picture_to_album(obj, obj.album)
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj) -> None:
        library.delete_picture(obj, delete_links=True)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for picture in queryset:  # one by one: a picture's links depend on the pictures left
                library.delete_picture(picture, delete_links=True)


class ShortLinkForm(forms.ModelForm):
    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if not SLUG_RE.match(slug):
            raise forms.ValidationError("A slug has 1-64 letters, digits, '-' and '_' (it is a URL path segment).")
        return slug


@admin.register(ShortLink)
class ShortLinkAdmin(BoundedAdmin, NotAddedByHand, TokensNotListed, admin.ModelAdmin):
    form = ShortLinkForm
    list_display = ("slug", "owner", "hits", "expires_at", "created")
    search_fields = ("slug", "token_sha256", "owner__username")
    # a link's owner and upload come from the site (anonymous links share one per token)
    readonly_fields = ("token", "token_sha256", "owner", "job", "hits", "created")
    actions = [block_tokens]

    def get_queryset(self, request):
        """Links with their owner and upload (without the upload's original) in one query."""
        return super().get_queryset(request).select_related("owner", "job").defer("job__source")


class AlbumForm(forms.ModelForm):
    def clean_title(self) -> str:
        """The title as the site's forms clean it; nothing left of it is an error, as there."""
        title = library.clean_title(self.cleaned_data["title"])
        if not title:
            raise forms.ValidationError("An album needs a title.")
        return title


@admin.register(Album)
class AlbumAdmin(BoundedAdmin, admin.ModelAdmin):
    form = AlbumForm
    list_display = ("title", "owner", "visibility", "slug", "created")
    list_filter = ("visibility",)
    search_fields = ("title", "slug", "owner__username")
    raw_id_fields = ("owner",)

    def get_readonly_fields(self, request, obj=None):
        """An album keeps its owner (their pictures are in it; chosen when adding one) and its
        slug, which the site makes (an unlisted album's only protection)."""
        return ("owner", "slug", "pictures", "created", "updated") if obj else ()

    def get_exclude(self, request, obj=None):
        return ("slug",) if obj is None else ()

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.slug = library.unguessable_album_slug(obj.title)
        super().save_model(request, obj, form, change)

    @admin.display(description="Pictures")
    def pictures(self, album: Album) -> str:
        """How many pictures the album has, linked to their list (an inline form per picture
        made a big album's page too many fields to post)."""
        count = album.pictures.count()
        url = reverse("admin:imagehost_picture_changelist") + f"?album__id__exact={album.pk}"
        return format_html('<a href="{}">{} picture{}</a>', url, count, pluralize(count))


@admin.register(EncodeJob)
class EncodeJobAdmin(BoundedAdmin, NotAddedByHand, admin.ModelAdmin):
    list_display = ("id", "status", "attempts", "sends", "owner", "source_bytes", "created", "finished")
    list_select_related = ("owner",)
    list_filter = ("status",)
    # the owner and album were checked at upload (the album is the owner's)
    readonly_fields = ("status", "attempts", "sends", "error", "owner", "album", "picture", "source_bytes", "created",
                       "updated", "started", "heartbeat_at", "finished")
    exclude = ("source",)

    def get_queryset(self, request):
        """Jobs without their uploaded originals, which no admin page shows."""
        return super().get_queryset(request).defer("source")


class BlockTokenForm(forms.ModelForm):
    token_or_hash = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Paste the token, a token URL (/i/… or /image?q=…), a short URL (/s/…) or its sha256.",
        required=False,
    )

    class Meta:
        model = BlockedToken
        fields = ("token_or_hash", "reason")

    def clean(self):
        data = super().clean()
        value = (data.get("token_or_hash") or "").strip()
        if not value:
            if not self.instance.pk:
                raise forms.ValidationError("Give a token or its sha256.")
            return data
        try:
            data["token_or_hash"] = tokens.takedown_identity(value)
        except ServiceError as exc:
            raise forms.ValidationError(exc.message) from exc
        if BlockedToken.objects.filter(token_sha256=data["token_or_hash"]).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("That token is already blocked.")
        return data


@admin.register(BlockedToken)
class BlockedTokenAdmin(BoundedAdmin, admin.ModelAdmin):
    form = BlockTokenForm
    list_display = ("token_sha256", "reason", "created_by", "created")
    list_select_related = ("created_by",)
    search_fields = ("token_sha256", "reason")

    def save_model(self, request, obj, form, change) -> None:
        value = form.cleaned_data.get("token_or_hash")
        if value:
            obj.token_sha256 = value  # the identity, from BlockTokenForm.clean
        if not obj.created_by_id:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


def ascii_username(form: forms.ModelForm) -> str:
    """The form's user name, held to sign-up's rule (``accounts.check_new_username``) when it is
    new or changed; a name from before the rule saves while it stays as it is."""
    username = form.cleaned_data.get("username")
    if username and "username" in form.changed_data:
        accounts.check_new_username(username, form._meta.model, other_than=form.instance)
    return username


class AsciiUserCreationForm(AdminUserCreationForm):
    """The admin's add-user form, with sign-up's rule for names (``ascii_username``)."""

    def clean_username(self) -> str:
        super().clean_username()
        return ascii_username(self)


class AsciiUserChangeForm(UserChangeForm):
    """The admin's user form, with sign-up's rule for a changed name (``ascii_username``)."""

    def clean_username(self) -> str:
        return ascii_username(self)


admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class AsciiUserAdmin(BoundedAdmin, UserAdmin):
    """Django's user admin, whose forms name users as sign-up does."""

    form = AsciiUserChangeForm
    add_form = AsciiUserCreationForm


admin.site.unregister(Group)


@admin.register(Group)
class BoundedGroupAdmin(BoundedAdmin, GroupAdmin):
    """Django's group admin, with the bounds of every list here."""
