-- Minimal Yuantus-compatible tenant/org database for yuantus.relmigrate's tests, demo and benchmarks.
--
-- Written from MAPPING.md and the schema dump of a real tenant database (schema/tenant.sql, PostgreSQL 15):
-- the tables below have the same column names, types, NOT NULL flags, defaults, keys, index names and foreign key
-- names as the real ones. What is left out, on purpose:
--   * the ~100 other tables; so meta_items.current_state has no FK (meta_lifecycle_states is not here) and
--     meta_files keeps only a subset of its columns (no vault_id / meta_vaults);
--   * ALL foreign keys of meta_relationships: older Yuantus databases had none, and the tests need orphans.
-- The end of the file seeds what Yuantus seeds into a new tenant database and the migration relies on
-- (same ids as schema/tenant_seed_meta.sql): permission 'Default', ItemTypes 'Part', 'Document', 'Part BOM'
-- (with their lifecycle maps) and rbac_users id 1.

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET client_min_messages = warning;

CREATE TABLE public.meta_permissions (
    id character varying NOT NULL,
    name character varying
);

CREATE TABLE public.meta_lifecycle_maps (
    id character varying NOT NULL,
    name character varying,
    description character varying
);

CREATE TABLE public.rbac_users (
    id integer NOT NULL,
    user_id integer NOT NULL,
    username character varying(100) NOT NULL,
    email character varying(200),
    is_active boolean,
    is_superuser boolean,
    last_login timestamp without time zone,
    created_at timestamp without time zone,
    updated_at timestamp without time zone
);
CREATE SEQUENCE public.rbac_users_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
ALTER SEQUENCE public.rbac_users_id_seq OWNED BY public.rbac_users.id;
ALTER TABLE ONLY public.rbac_users ALTER COLUMN id SET DEFAULT nextval('public.rbac_users_id_seq'::regclass);

CREATE TABLE public.meta_item_types (
    id character varying NOT NULL,
    label character varying,
    description character varying,
    uuid character varying,
    is_relationship boolean,
    is_versionable boolean,
    version_control_enabled boolean,
    revision_scheme character varying(50),
    permission_id character varying,
    lifecycle_map_id character varying,
    properties_schema jsonb,
    ui_layout jsonb,
    methods jsonb,
    on_before_add_method_id character varying,
    on_after_update_method_id character varying,
    source_item_type_id character varying,
    related_item_type_id character varying
);

CREATE TABLE public.meta_items (
    id character varying NOT NULL,
    item_type_id character varying,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at timestamp with time zone,
    config_id character varying NOT NULL,
    generation integer,
    is_current boolean,
    state character varying,
    current_state character varying,
    is_versionable boolean,
    current_version_id character varying,
    created_by_id integer,
    modified_by_id integer,
    owner_id integer,
    locked_by_id integer,
    permission_id character varying,
    source_id character varying,
    related_id character varying,
    properties jsonb
);

CREATE TABLE public.meta_relationship_types (
    id character varying NOT NULL,
    name character varying(100) NOT NULL,
    label character varying(200) NOT NULL,
    source_item_type character varying(100) NOT NULL,
    related_item_type character varying(100) NOT NULL,
    is_polymorphic boolean NOT NULL,
    cascade_delete boolean NOT NULL,
    max_quantity integer,
    property_definitions json,
    lifecycle_map_id character varying
);

CREATE TABLE public.meta_relationships (
    id character varying NOT NULL,
    relationship_type_id character varying NOT NULL,
    source_id character varying NOT NULL,
    related_id character varying NOT NULL,
    properties json,
    sort_order integer NOT NULL,
    state character varying(50),
    created_by_id integer
);

-- Subset of the real meta_files (the NOT NULL columns and a few others), so meta_item_files can keep its FKs.
CREATE TABLE public.meta_files (
    id character varying NOT NULL,
    filename character varying NOT NULL,
    file_type character varying,
    mime_type character varying,
    file_size bigint,
    checksum character varying,
    system_path character varying NOT NULL,
    created_by_id integer,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamp with time zone
);

-- A table with a foreign key into meta_items (rollback must notice rows that reference migrated items).
CREATE TABLE public.meta_item_files (
    id character varying NOT NULL,
    item_id character varying NOT NULL,
    file_id character varying NOT NULL,
    file_role character varying,
    sequence integer,
    description character varying,
    created_at timestamp with time zone DEFAULT CURRENT_TIMESTAMP,
    import_batch_id character varying,
    source_batch_id character varying,
    needs_update boolean DEFAULT false NOT NULL,
    staleness_reason character varying,
    staleness_checked_at timestamp with time zone
);

ALTER TABLE ONLY public.meta_permissions ADD CONSTRAINT meta_permissions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_lifecycle_maps ADD CONSTRAINT meta_lifecycle_maps_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.rbac_users ADD CONSTRAINT rbac_users_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.rbac_users ADD CONSTRAINT rbac_users_user_id_key UNIQUE (user_id);
ALTER TABLE ONLY public.rbac_users ADD CONSTRAINT rbac_users_username_key UNIQUE (username);
ALTER TABLE ONLY public.meta_item_types ADD CONSTRAINT meta_item_types_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_items ADD CONSTRAINT meta_items_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_relationship_types ADD CONSTRAINT meta_relationship_types_name_key UNIQUE (name);
ALTER TABLE ONLY public.meta_relationship_types ADD CONSTRAINT meta_relationship_types_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_relationships ADD CONSTRAINT meta_relationships_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_files ADD CONSTRAINT meta_files_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.meta_item_files ADD CONSTRAINT meta_item_files_pkey PRIMARY KEY (id);

CREATE INDEX ix_meta_items_config_id ON public.meta_items USING btree (config_id);
CREATE INDEX ix_meta_items_item_type_id ON public.meta_items USING btree (item_type_id);
CREATE INDEX ix_meta_items_related_id ON public.meta_items USING btree (related_id);
CREATE INDEX ix_meta_items_source_id ON public.meta_items USING btree (source_id);
CREATE INDEX ix_meta_relationships_related_id ON public.meta_relationships USING btree (related_id);
CREATE INDEX ix_meta_relationships_source_id ON public.meta_relationships USING btree (source_id);
CREATE INDEX ix_meta_files_checksum ON public.meta_files USING btree (checksum);
CREATE INDEX ix_meta_files_file_type ON public.meta_files USING btree (file_type);
CREATE INDEX ix_meta_item_files_file_id ON public.meta_item_files USING btree (file_id);
CREATE INDEX ix_meta_item_files_import_batch_id ON public.meta_item_files USING btree (import_batch_id);
CREATE INDEX ix_meta_item_files_item_id ON public.meta_item_files USING btree (item_id);
CREATE INDEX ix_meta_item_files_needs_update ON public.meta_item_files USING btree (needs_update);
CREATE UNIQUE INDEX uq_item_file_role ON public.meta_item_files USING btree (item_id, file_id, file_role);

ALTER TABLE ONLY public.meta_item_types
    ADD CONSTRAINT meta_item_types_lifecycle_map_id_fkey FOREIGN KEY (lifecycle_map_id) REFERENCES public.meta_lifecycle_maps(id);
ALTER TABLE ONLY public.meta_item_types
    ADD CONSTRAINT meta_item_types_related_item_type_id_fkey FOREIGN KEY (related_item_type_id) REFERENCES public.meta_item_types(id);
ALTER TABLE ONLY public.meta_item_types
    ADD CONSTRAINT meta_item_types_source_item_type_id_fkey FOREIGN KEY (source_item_type_id) REFERENCES public.meta_item_types(id);
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES public.rbac_users(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_item_type_id_fkey FOREIGN KEY (item_type_id) REFERENCES public.meta_item_types(id);
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_locked_by_id_fkey FOREIGN KEY (locked_by_id) REFERENCES public.rbac_users(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_modified_by_id_fkey FOREIGN KEY (modified_by_id) REFERENCES public.rbac_users(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES public.rbac_users(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_related_id_fkey FOREIGN KEY (related_id) REFERENCES public.meta_items(id);
ALTER TABLE ONLY public.meta_items
    ADD CONSTRAINT meta_items_source_id_fkey FOREIGN KEY (source_id) REFERENCES public.meta_items(id);
ALTER TABLE ONLY public.meta_relationship_types
    ADD CONSTRAINT meta_relationship_types_lifecycle_map_id_fkey FOREIGN KEY (lifecycle_map_id) REFERENCES public.meta_lifecycle_maps(id);
ALTER TABLE ONLY public.meta_files
    ADD CONSTRAINT meta_files_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES public.rbac_users(id);
ALTER TABLE ONLY public.meta_item_files
    ADD CONSTRAINT meta_item_files_file_id_fkey FOREIGN KEY (file_id) REFERENCES public.meta_files(id);
ALTER TABLE ONLY public.meta_item_files
    ADD CONSTRAINT meta_item_files_item_id_fkey FOREIGN KEY (item_id) REFERENCES public.meta_items(id);

-- Seed (as schema/tenant_seed_meta.sql, restricted to what the migration touches).
INSERT INTO public.meta_permissions VALUES ('Default', 'Default (dev)');
INSERT INTO public.meta_lifecycle_maps VALUES ('399acb9a-f48f-43f7-b972-010f24131f6f', 'Document Lifecycle', 'Controlled release for documents');
INSERT INTO public.meta_lifecycle_maps VALUES ('9eaa6277-9545-4f04-9acb-7d2a52ae831d', 'Part Lifecycle', 'Controlled release for parts');
INSERT INTO public.meta_item_types VALUES ('Document', 'Document', NULL, '16ba8a75-ba71-4ea1-a0d8-05de3d3483fb', false, true, true, 'A-Z', 'Default', '399acb9a-f48f-43f7-b972-010f24131f6f', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO public.meta_item_types VALUES ('Part', 'Part', NULL, 'e27c85f0-1a4e-4358-88a9-b248d17589f9', false, true, true, 'A-Z', 'Default', '9eaa6277-9545-4f04-9acb-7d2a52ae831d', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO public.meta_item_types VALUES ('Part BOM', 'Part BOM', NULL, '8998110b-6f07-4185-adab-0c89d91932c0', true, true, true, 'A-Z', 'Default', NULL, NULL, NULL, NULL, NULL, NULL, 'Part', 'Part');
INSERT INTO public.rbac_users VALUES (1, 1, 'admin', 'admin@example.com', true, true, NULL, '2026-12-04 15:21:25.345329', '2026-12-04 15:21:25.345332');
SELECT pg_catalog.setval('public.rbac_users_id_seq', 1, false);
