from __future__ import annotations

import factory

from segments.models import Profile, ProfileField, Segment


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile
        skip_postgeneration_save = True

    customer_id = factory.Sequence(lambda n: f"c{n:06d}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = "Ann"
    last_name = "Lee"
    attributes = factory.LazyFunction(dict)

    @factory.post_generation
    def catalogue(profile, create, extracted, **kwargs):
        """Register the attributes in the field catalogue, as an import would."""
        for name in profile.attributes:
            ProfileField.objects.get_or_create(name=name)


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    rules = factory.LazyFunction(
        lambda: {"match": "all", "conditions": [{"field": "email", "operator": "is_not_empty"}]}
    )
