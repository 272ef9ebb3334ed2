"""Forms of Admin > Users."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role


class UserForm(forms.Form):
    """Name, e-mail and role: what an administrator may change on any user."""

    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(
        label=_("Email"),
        error_messages={
            "required": _("Enter the e-mail address the invitation and password links go to."),
            "invalid": _("Enter a whole e-mail address, for example ann@example.com."),
        },
    )
    role = forms.ChoiceField(
        label=_("Role"),
        choices=Role.choices,
        initial=Role.VIEWER,
        help_text=_(
            "Viewers see segments and exports; contributors also build and run them; "
            "administrators also manage connections, the schedule and users."
        ),
    )

    def __init__(self, *args, user: User | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        others = User.objects.filter(email__iexact=email)
        if self.user is not None:
            others = others.exclude(pk=self.user.pk)
        if others.exists():
            raise forms.ValidationError(_("Another user already has this e-mail address."))
        return email

    def clean_role(self) -> Role:
        return Role(self.cleaned_data["role"])


class UserAddForm(UserForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text=_("What they type to log in: letters, digits and @ . + - _ only."),
        error_messages={"required": _("Enter a username, for example “ann.lee”.")},
    )
    field_order = ["username", "first_name", "last_name", "email", "role"]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This username is taken. Choose another one."))
        return username
