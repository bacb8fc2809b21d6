//! English and French: every string a person reads, in one table.
//!
//! The language comes from the `causerie_lang` cookie when the person chose
//! one, else from the browser's preferences (`Accept-Language` on the server,
//! the same list as `navigator.languages`). The server writes it into
//! `<html lang>`, and the hydrating page reads it back from there, so the
//! server's render and the browser's agree.

use crate::protocol::ErrorCode;

/// The cookie that keeps a chosen language, read by the server's render.
pub const LANG_COOKIE: &str = "causerie_lang";

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// Every language, in the order the switch lists them.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 code, as in `<html lang>` and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The language's own name, for the switch.
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    /// A supported language for a tag such as `fr-CA` or `en`.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The first supported language of a list in preference order.
    pub fn first_of<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<Lang> {
        tags.into_iter().find_map(Lang::from_tag)
    }

    /// The preferred supported language of an `Accept-Language` header
    /// (`fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5`), weights respected.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let Some(lang) = Lang::from_tag(tag) else {
                continue;
            };
            if q <= 0.0 {
                continue;
            }
            // Highest weight wins; among equal weights, the first listed.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// The language chosen in a `Cookie` header, if any.
    pub fn from_cookie_header(header: &str) -> Option<Lang> {
        header
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == LANG_COOKIE)
            .and_then(|(_, v)| Lang::from_tag(v))
    }

    /// A string of the table.
    pub fn t(self, key: K) -> &'static str {
        let (en, fr) = key.pair();
        match self {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }

    /// A string of the table with `{name}` placeholders filled in.
    pub fn f(self, key: K, args: &[(&str, &str)]) -> String {
        let mut s = self.t(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// `one` for a count of 1 (and 0 in French), `many` otherwise, with `{n}` filled in.
    pub fn plural(self, n: usize, one: K, many: K) -> String {
        let singular = match self {
            Lang::En => n == 1,
            Lang::Fr => n <= 1,
        };
        self.f(if singular { one } else { many }, &[("n", &n.to_string())])
    }

    /// What an error code means, for a person.
    pub fn error(self, code: ErrorCode) -> &'static str {
        self.t(match code {
            ErrorCode::BadRequest => K::ErrBadRequest,
            ErrorCode::TooLarge => K::ErrTooLarge,
            ErrorCode::RateLimited => K::ErrRateLimited,
            ErrorCode::NotJoined => K::ErrNotJoined,
            ErrorCode::Forbidden => K::ErrForbidden,
            ErrorCode::Unauthorized => K::ErrUnauthorized,
            ErrorCode::BadName => K::NameTaken,
            ErrorCode::Unavailable => K::ErrUnavailable,
            ErrorCode::NotFound => K::ErrNotFound,
        })
    }

    /// Month names, January first.
    pub fn months(self) -> [&'static str; 12] {
        match self {
            Lang::En => [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ],
            Lang::Fr => [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ],
        }
    }

    /// Weekday names, Monday first.
    pub fn weekdays(self) -> [&'static str; 7] {
        match self {
            Lang::En => [
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            ],
            Lang::Fr => [
                "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
            ],
        }
    }
}

macro_rules! table {
    ($($key:ident => $en:expr, $fr:expr;)*) => {
        /// The keys of the string table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum K { $($key),* }

        impl K {
            /// (English, French).
            fn pair(self) -> (&'static str, &'static str) {
                match self { $(K::$key => ($en, $fr)),* }
            }
        }

        #[cfg(test)]
        const ALL_KEYS: &[K] = &[$(K::$key),*];
    };
}

// French typography: a no-break space (\u{a0}) before : ; ! ?
table! {
    Rooms => "Rooms", "Salons";
    DirectMessages => "Direct messages", "Messages privés";
    NoDirectMessages => "Pick someone in the online list to write to them privately.",
        "Choisissez quelqu’un dans la liste des personnes en ligne pour lui écrire en privé.";
    JoinRoomLabel => "Join or create a room", "Rejoindre ou créer un salon";
    JoinRoomPlaceholder => "room-name", "nom-du-salon";
    JoinRoomButton => "Join", "Rejoindre";
    RoomNameInvalid => "A room name is 1 to 64 lower-case letters, digits, - and _.",
        "Un nom de salon compte 1 à 64 lettres minuscules, chiffres, - et _.";
    LeaveRoom => "Leave {room}", "Quitter {room}";
    Online => "Online", "En ligne";
    NotifyLabel => "Notify me of", "Me notifier de";
    NotifyAll => "every message", "chaque message";
    NotifyMentions => "mentions only", "mentions seulement";
    NotifyNone => "nothing", "rien";
    NotificationsTitle => "Notifications", "Notifications";
    NotifyOffer => "Get notified of new messages", "Soyez prévenu des nouveaux messages";
    TurnOn => "Turn on", "Activer";
    NotNow => "Not now", "Plus tard";
    TurnOnNotifications => "Turn on desktop notifications", "Activer les notifications";
    NotificationsBlocked => "Notifications are blocked in this browser’s settings for this site.",
        "Les notifications sont bloquées pour ce site dans les réglages du navigateur.";
    NotifySound => "Play a sound with notifications", "Jouer un son avec les notifications";
    NotificationTitle => "{author} in {room}", "{author} dans {room}";
    NOnline => "{n} online", "{n} en ligne";
    You => "you", "vous";
    YouAre => "You are {name}", "Vous êtes {name}";
    MessageTo => "Send a direct message to {name}", "Envoyer un message privé à {name}";
    StatusOffline => "Offline", "Hors ligne";
    StatusConnecting => "Connecting…", "Connexion…";
    StatusConnected => "Connected", "Connecté";
    StatusReconnecting => "Reconnecting…", "Reconnexion…";
    Dismiss => "Dismiss", "Fermer";
    TypingOne => "{a} is typing…", "{a} écrit…";
    TypingTwo => "{a} and {b} are typing…", "{a} et {b} écrivent…";
    TypingMany => "Several people are typing…", "Plusieurs personnes écrivent…";
    Loading => "Loading…", "Chargement…";
    LoadOlder => "Load older messages", "Charger les messages précédents";
    // ---- search ----
    SearchLabel => "Search messages", "Rechercher dans les messages";
    SearchPlaceholder => "Search", "Rechercher";
    OpenSearch => "Search messages (Ctrl+K)", "Rechercher dans les messages (Ctrl+K)";
    SearchResultsFor => "Results for “{q}”", "Résultats pour «\u{a0}{q}\u{a0}»";
    SearchHint => "Type words to find them in the rooms you can read, without minding case or accents.",
        "Tapez des mots pour les trouver dans les salons que vous pouvez lire, sans souci des majuscules ni des accents.";
    Searching => "Searching…", "Recherche…";
    NoResults => "No message matches “{q}”.", "Aucun message ne correspond à «\u{a0}{q}\u{a0}».";
    SearchTooLong => "A search is {n} characters at most.", "Une recherche compte {n}\u{a0}caractères au plus.";
    SearchUnreachable => "The search did not answer. Try again in a moment.",
        "La recherche n’a pas répondu. Réessayez dans un instant.";
    SearchGuest => "Signed out, you search the public rooms only.",
        "Sans compte connecté, vous ne cherchez que dans les salons publics.";
    MoreResults => "More results", "Plus de résultats";
    CloseSearch => "Close the search", "Fermer la recherche";
    BackToResults => "Back to the results", "Retour aux résultats";
    MessageMissing => "That message is no longer in the room’s history.",
        "Ce message n’est plus dans l’historique du salon.";
    // ---- end of search ----
    MessagesIn => "Messages in {room}", "Messages dans {room}";
    Empty => "No messages yet. Say hello!", "Pas encore de message. Dites bonjour\u{a0}!";
    NewMessagesOne => "{n} new message", "{n} nouveau message";
    NewMessagesMany => "{n} new messages", "{n} nouveaux messages";
    JumpNewest => "Jump to the newest", "Aller aux derniers messages";
    NewMessagesLine => "New messages", "Nouveaux messages";
    UnreadOne => "{n} unread message", "{n} message non lu";
    UnreadMany => "{n} unread messages", "{n} messages non lus";
    Sending => "Sending…", "Envoi…";
    Waiting => "Waiting for the connection…", "En attente de la connexion…";
    NotSent => "Not sent:", "Non envoyé\u{a0}:";
    Retry => "Retry", "Réessayer";
    Copy => "Copy", "Copier";
    Copied => "Copied", "Copié";
    MessageLabel => "Message", "Message";
    MessagePlaceholder => "Message {room}", "Écrire dans {room}";
    ComposerHint => "Enter sends, Shift+Enter adds a line, Escape clears, Up edits your last message, @ mentions someone; paste or drop files to attach them.",
        "Entrée envoie, Maj+Entrée ajoute une ligne, Échap efface, Haut modifie votre dernier message, @ mentionne quelqu’un\u{a0}; collez ou déposez des fichiers pour les joindre.";
    Send => "Send", "Envoyer";
    SignIn => "Sign in", "Se connecter";
    Account => "Account", "Compte";
    TooLong => "Messages are at most {n} characters.", "Un message compte au plus {n} caractères.";
    PickNickname => "Pick a nickname to join the conversation",
        "Choisissez un pseudo pour rejoindre la conversation";
    NicknamePlaceholder => "e.g. alice", "p. ex. alice";
    JoinChat => "Join chat", "Entrer";
    NameInvalid => "A nickname is 1 to 32 letters, digits, _, - and .",
        "Un pseudo compte 1 à 32 lettres, chiffres, _, - et .";
    NameTaken => "This nickname is taken; pick another.",
        "Ce pseudo est déjà pris\u{a0}; choisissez-en un autre.";
    ErrForbidden => "You cannot see this conversation.", "Vous ne pouvez pas voir cette conversation.";
    ForbiddenDm => "This conversation is private: only its two members can read it.",
        "Cette conversation est privée\u{a0}: seuls ses deux membres peuvent la lire.";
    GuestDm => "Direct messages need an account, or a browser that keeps your guest name (cookies on).",
        "Les messages privés demandent un compte, ou un navigateur qui garde votre pseudo d’invité (cookies activés).";
    PrivateNote => "A private conversation between {a} and {b}.",
        "Une conversation privée entre {a} et {b}.";
    ErrRateLimited => "You are sending too fast; wait a moment.",
        "Vous envoyez trop vite\u{a0}; patientez un instant.";
    ErrTooLarge => "That message is too long.", "Ce message est trop long.";
    ErrUnavailable => "The server cannot store messages right now; try again.",
        "Le serveur ne peut pas enregistrer de message pour l’instant\u{a0}; réessayez.";
    ErrNotJoined => "You are not in this room yet.", "Vous n’êtes pas encore dans ce salon.";
    ErrBadRequest => "The server did not understand that request.",
        "Le serveur n’a pas compris cette demande.";
    ErrUnauthorized => "The server did not accept your session.",
        "Le serveur n’a pas accepté votre session.";
    ErrNotFound => "Not found.", "Introuvable.";
    BadRoom => "There is no room by that name: a room name is 1 to 64 lower-case letters, digits, - and _.",
        "Aucun salon de ce nom\u{a0}: un nom de salon compte 1 à 64 lettres minuscules, chiffres, - et _.";
    HistoryUnavailable => "History is unavailable right now.",
        "L’historique est indisponible pour le moment.";
    NoSuchRoom => "There is no room by that name here, or it is private and you are not in it.",
        "Il n’y a pas de salon de ce nom ici, ou il est privé et vous n’en êtes pas membre.";
    SignInToRead => "Sign in to read this server’s rooms.",
        "Connectez-vous pour lire les salons de ce serveur.";
    StatusBanned => "Banned", "Banni";
    StatusBlocked => "Blocked", "Bloqué";
    StatusSignedOut => "Signed out", "Déconnecté";
    EndedBanned => "This account was banned from this server: the conversation is closed.",
        "Ce compte a été banni de ce serveur\u{a0}: la conversation est fermée.";
    EndedBlocked => "An admin ended your connection and blocked this name for a day.",
        "Un administrateur a fermé votre connexion et bloqué ce nom pour une journée.";
    EndedSignedOut => "This session ended (signed out, or the password changed): sign in again.",
        "Cette session est terminée (déconnexion, ou mot de passe changé)\u{a0}: reconnectez-vous.";
    // Private rooms, group conversations, topics, the header's invitation (team-ui).
    StatusJoinOrSignIn => "Pick a name to join, or sign in", "Choisissez un pseudo ou connectez-vous";
    PrivateMark => "private", "privé";
    NewPrivateRoom => "New private room", "Nouveau salon privé";
    NewConversation => "New conversation", "Nouvelle conversation";
    NameLabel => "Name", "Nom";
    PrivateNameHint => "Lower-case letters, digits, - and _. Only its members will see it.",
        "Lettres minuscules, chiffres, - et _. Seuls ses membres le verront.";
    TopicLabel => "Topic (optional)", "Sujet (facultatif)";
    MembersLabel => "Members", "Membres";
    PeopleLabel => "People", "Personnes";
    NamesHint => "Account names, separated by commas or spaces.",
        "Noms de comptes, séparés par des virgules ou des espaces.";
    NamesPlaceholder => "e.g. bob, carol", "p. ex. bob, carol";
    GroupHint => "Pick 2 to 7 people besides you.", "Choisissez de 2 à 7 personnes en plus de vous.";
    GroupCount => "Pick 2 to 7 people besides you (now {n}).",
        "Choisissez de 2 à 7 personnes en plus de vous (actuellement {n}).";
    BadMemberName => "Not a valid name: {name}", "Nom invalide\u{a0}: {name}";
    Create => "Create", "Créer";
    Open => "Open", "Ouvrir";
    Cancel => "Cancel", "Annuler";
    Working => "Working…", "En cours…";
    RoomTaken => "A room by that name exists already: pick another name.",
        "Un salon de ce nom existe déjà\u{a0}: choisissez un autre nom.";
    NoSuchAccount => "There is no account by that name here.", "Aucun compte ne porte ce nom ici.";
    NotAllowed => "Only the room’s owner or an admin can do that.",
        "Seuls le propriétaire du salon ou un admin peuvent faire cela.";
    CannotAdd => "That cannot be done: only accounts can be members, and someone already in cannot be added again.",
        "Impossible\u{a0}: seuls des comptes peuvent être membres, et qui en est déjà ne peut être ajouté de nouveau.";
    NotConnected => "Not connected right now; try again in a moment.",
        "Pas de connexion pour l’instant\u{a0}; réessayez dans un instant.";
    AddSomeone => "Add someone", "Ajouter quelqu’un";
    Add => "Add", "Ajouter";
    RemoveName => "Remove {name}", "Retirer {name}";
    LeaveThisRoom => "Leave this room", "Quitter ce salon";
    RemovedBy => "You were removed from {room} by {by}.", "{by} vous a retiré de {room}.";
    YouLeft => "You left {room}.", "Vous avez quitté {room}.";
    RemovedNote => "You no longer receive its messages.", "Vous n’en recevez plus les messages.";
    EditTopic => "Edit the topic", "Modifier le sujet";
    AddTopic => "Add a topic", "Ajouter un sujet";
    Save => "Save", "Enregistrer";
    TopicInvalid => "A topic is at most 200 characters, on one line.",
        "Un sujet compte au plus 200 caractères, sur une ligne.";
    OpenMenu => "Rooms", "Salons";
    ShowPeople => "Who is online", "Qui est en ligne";
    Close => "Close", "Fermer";
    Language => "Language", "Langue";
    Today => "Today", "Aujourd’hui";
    Yesterday => "Yesterday", "Hier";
    NotFoundPage => "Page not found.", "Page introuvable.";
    NewMessageIn => "{author} in {room}: {body}", "{author} dans {room}\u{a0}: {body}";
    SkipToComposer => "Skip to the message box", "Aller à la zone de saisie";
    Private => "Private conversation", "Conversation privée";
    // ---- Conversations (issue 15): replies, reactions, edits, mentions ----
    React => "React", "Réagir";
    AddReaction => "Add a reaction", "Ajouter une réaction";
    Reply => "Reply", "Répondre";
    Edit => "Edit", "Modifier";
    Delete => "Delete", "Supprimer";
    MessageActions => "Message actions", "Actions sur le message";
    ConfirmDelete => "Delete this message?", "Supprimer ce message\u{a0}?";
    MessageDeleted => "message deleted", "message supprimé";
    Edited => "(edited)", "(modifié)";
    EditedAt => "Edited {time}", "Modifié le {time}";
    ReplyingTo => "Replying to {name}", "En réponse à {name}";
    CancelReply => "Cancel the reply", "Annuler la réponse";
    ShowOriginal => "Show the message {name} answered", "Afficher le message auquel {name} répond";
    OriginalDeleted => "The original message was deleted.", "Le message d’origine a été supprimé.";
    OriginalEarlier => "An earlier message", "Un message plus ancien";
    ReactionLabel => "{emoji}: {names}", "{emoji}\u{a0}: {names}";
    ReactionsOf => "Reactions", "Réactions";
    OtherEmoji => "Any emoji", "Autre émoji";
    EditLabel => "Edit your message", "Modifier votre message";
    EditHint => "Enter saves, Shift+Enter adds a line, Escape cancels.",
        "Entrée enregistre, Maj+Entrée ajoute une ligne, Échap annule.";
    MentionsOne => "{n} unread mention", "{n} mention non lue";
    MentionsMany => "{n} unread mentions", "{n} mentions non lues";
    PeopleToMention => "People to mention", "Personnes à mentionner";
    RefusedReact => "Your reaction was not taken:", "Votre réaction n’a pas été prise en compte\u{a0}:";
    RefusedEdit => "Your edit was not saved:", "Votre modification n’a pas été enregistrée\u{a0}:";
    RefusedDelete => "The message was not deleted:", "Le message n’a pas été supprimé\u{a0}:";
    ChangeForbidden => "only its author can do that (or an admin, to delete it).",
        "seul son auteur peut le faire (ou un admin, pour le supprimer).";
    ChangeNotFound => "that message no longer exists.", "ce message n’existe plus.";
    ChangeBad => "the server did not accept it (a reaction is one emoji).",
        "le serveur ne l’a pas accepté (une réaction est un seul émoji).";
    // ---- end of conversations ----
    // ---- Team accounts (issue 14): registration, invite links, administration ----
    RegTitle => "Create an account", "Créer un compte";
    RegName => "Name", "Nom";
    RegPassword => "Password (8 characters or more)", "Mot de passe (8 caractères ou plus)";
    RegSubmit => "Register", "S’inscrire";
    RegHaveAccount => "Already registered?", "Déjà inscrit\u{a0}?";
    FirstAccount => "This server has no account yet. The account you create now will be its admin.",
        "Ce serveur n’a pas encore de compte. Celui que vous créez maintenant en sera l’administrateur.";
    FirstAccountLogin => "No account exists here yet: create the first one, it will be the admin.",
        "Aucun compte n’existe encore ici\u{a0}: créez le premier, il sera l’administrateur.";
    CreateFirstAccount => "Create the first account", "Créer le premier compte";
    RegClosed => "Registration is closed on this server. Ask an admin for an account.",
        "Les inscriptions sont fermées sur ce serveur. Demandez un compte à un administrateur.";
    RegInviteOnly => "Registration here is by invitation: open the invite link you were given.",
        "Ici, on s’inscrit sur invitation\u{a0}: ouvrez le lien d’invitation que vous avez reçu.";
    Invited => "You are invited to join this server. Pick a name and a password.",
        "Vous êtes invité à rejoindre ce serveur. Choisissez un nom et un mot de passe.";
    InviteUnknown => "This invite link is not valid. Check that it is whole, or ask for a new one.",
        "Ce lien d’invitation n’est pas valable. Vérifiez qu’il est complet, ou demandez-en un autre.";
    InviteUsedUp => "This invite link is used up. Ask for a new one.",
        "Ce lien d’invitation a déjà servi autant de fois que prévu. Demandez-en un autre.";
    InviteExpired => "This invite link has expired. Ask for a new one.",
        "Ce lien d’invitation a expiré. Demandez-en un autre.";
    InviteRevoked => "This invite link was revoked. Ask for a new one.",
        "Ce lien d’invitation a été révoqué. Demandez-en un autre.";
    InviteTitle => "Invitation", "Invitation";
    AdminTitle => "Administration", "Administration";
    AdminOnly => "This page is for the server’s admins.",
        "Cette page est réservée aux administrateurs du serveur.";
    AdminMembers => "Members", "Membres";
    AdminName => "Name", "Nom";
    AdminRole => "Role", "Rôle";
    AdminLastSeen => "Last seen", "Dernière visite";
    AdminActions => "Actions", "Actions";
    RoleAdmin => "admin", "admin";
    RoleMember => "member", "membre";
    Banned => "banned", "banni";
    NeverSeen => "never", "jamais";
    MakeAdmin => "Make admin", "Nommer admin";
    MakeAdminLabel => "Make {name} an admin", "Nommer {name} administrateur";
    UnmakeAdmin => "Remove admin", "Retirer admin";
    UnmakeAdminLabel => "Make {name} a member again", "Refaire de {name} un simple membre";
    Ban => "Ban", "Bannir";
    BanLabel => "Ban {name}", "Bannir {name}";
    Unban => "Lift ban", "Lever le bannissement";
    UnbanLabel => "Lift the ban on {name}", "Lever le bannissement de {name}";
    AdminInvites => "Invite links", "Liens d’invitation";
    InviteUses => "Registrations allowed", "Inscriptions permises";
    InviteExpiry => "Expires after", "Expire après";
    OneHour => "1 hour", "1 heure";
    OneDay => "1 day", "1 jour";
    SevenDays => "7 days", "7 jours";
    ThirtyDays => "30 days", "30 jours";
    MakeInvite => "Make a link", "Créer un lien";
    NewInvite => "New link: copy it and send it to whom you invite.",
        "Nouveau lien\u{a0}: copiez-le et envoyez-le à qui vous invitez.";
    InviteLink => "Link", "Lien";
    UsesLeft => "Left", "Restant";
    Expires => "Expires", "Expire";
    Revoke => "Revoke", "Révoquer";
    RevokeLabel => "Revoke the link ending in {code}", "Révoquer le lien qui finit par {code}";
    NoInvites => "No live invite link.", "Aucun lien d’invitation actif.";
    AdminGuests => "Guests", "Invités";
    GuestBlockHint => "End a guest’s connections and block that name for a day.",
        "Déconnecter un invité et bloquer ce pseudo pendant un jour.";
    GuestName => "Guest name", "Pseudo de l’invité";
    BlockGuest => "Disconnect and block", "Déconnecter et bloquer";
    Done => "Done.", "C’est fait.";
    AdminLink => "Administration", "Administration";
    BackToChat => "Back to the chat", "Retour à la discussion";
    // ---- end of team accounts ----
    // ---- Files and images (issue 17) ----
    AttachFiles => "Attach files", "Joindre des fichiers";
    DropFiles => "Drop files to share", "Déposez des fichiers pour les partager";
    FilesToSend => "Files to send", "Fichiers à envoyer";
    RemoveFile => "Remove {name}", "Retirer {name}";
    CancelUpload => "Cancel the upload of {name}", "Annuler l’envoi de {name}";
    UploadingName => "Uploading {name}", "Envoi de {name}";
    UploadsPending => "Your message can go once its files are uploaded: wait a moment, then send.",
        "Le message pourra partir une fois ses fichiers envoyés\u{a0}: patientez un instant, puis envoyez.";
    UploadFailed => "The upload failed; check the connection and try again.",
        "L’envoi a échoué\u{a0}; vérifiez la connexion et réessayez.";
    FileTooLarge => "This file is too large for this server.", "Ce fichier est trop gros pour ce serveur.";
    UploadForbidden => "Only accounts can share files: sign in to share one.",
        "Seuls les comptes peuvent partager des fichiers\u{a0}: connectez-vous pour en partager.";
    TooManyFiles => "A message carries at most {n} files.", "Un message porte au plus {n}\u{a0}fichiers.";
    Download => "Download", "Télécharger";
    DownloadName => "Download {name}", "Télécharger {name}";
    PreviousImage => "Previous image", "Image précédente";
    NextImage => "Next image", "Image suivante";
    ImageCount => "{i} of {n}", "{i} sur {n}";
    SizeB => "{n}\u{a0}B", "{n}\u{a0}o";
    SizeKb => "{n}\u{a0}KB", "{n}\u{a0}Ko";
    SizeMb => "{n}\u{a0}MB", "{n}\u{a0}Mo";
    SizeGb => "{n}\u{a0}GB", "{n}\u{a0}Go";
    SizeTb => "{n}\u{a0}TB", "{n}\u{a0}To";
    DecimalPoint => ".", ",";
    // ---- end of files ----
}

/// The language of this request: the cookie, else `Accept-Language`, else English.
#[cfg(feature = "ssr")]
pub fn request_lang() -> Lang {
    use axum::http::header;
    use axum::http::request::Parts;
    use leptos::prelude::use_context;
    let Some(parts) = use_context::<Parts>() else {
        return Lang::default();
    };
    let cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Lang::from_cookie_header);
    cookie
        .or_else(|| {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or_default()
}

/// The language the server rendered the page in (`<html lang>`).
#[cfg(feature = "hydrate")]
pub fn document_lang() -> Lang {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("lang"))
        .and_then(|l| Lang::from_tag(&l))
        .unwrap_or_default()
}

/// The language of `navigator.languages`, when the person never chose one.
#[cfg(feature = "hydrate")]
pub fn browser_lang() -> Option<Lang> {
    let nav = web_sys::window()?.navigator();
    let tags: Vec<String> = nav
        .languages()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    Lang::first_of(tags.iter().map(String::as_str))
}

/// Whether the person chose a language (the cookie is set).
#[cfg(feature = "hydrate")]
pub fn chosen_lang() -> Option<Lang> {
    use wasm_bindgen::JsCast;
    let doc = web_sys::window()?
        .document()?
        .dyn_into::<web_sys::HtmlDocument>()
        .ok()?;
    Lang::from_cookie_header(&doc.cookie().ok()?)
}

/// Remembers a choice for the server's next render, and tells the document.
pub fn choose(lang: Lang) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            if let Some(el) = doc.document_element() {
                let _ = el.set_attribute("lang", lang.code());
            }
            if let Ok(html) = doc.dyn_into::<web_sys::HtmlDocument>() {
                let _ = html.set_cookie(&format!(
                    "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    lang.code()
                ));
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = lang;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept_language("fr-FR"), Some(Lang::Fr));
        assert_eq!(
            Lang::from_accept_language("de-DE,de;q=0.9,fr;q=0.8,en;q=0.7"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.5, fr-CA;q=0.9"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,fr;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("de, *;q=0.1"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn cookie_and_tags() {
        assert_eq!(
            Lang::from_cookie_header("causerie_guest=abc; causerie_lang=fr"),
            Some(Lang::Fr)
        );
        assert_eq!(Lang::from_cookie_header("causerie_lang=xx"), None);
        assert_eq!(Lang::first_of(["de", "fr-BE", "en"]), Some(Lang::Fr));
    }

    #[test]
    fn every_key_is_translated() {
        for k in ALL_KEYS {
            let (en, fr) = k.pair();
            assert!(!en.is_empty() && !fr.is_empty(), "{k:?}");
            // The same placeholders on both sides.
            let holes = |s: &str| {
                let mut v: Vec<String> = s
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_string()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(holes(en), holes(fr), "{k:?}");
        }
    }

    #[test]
    fn plurals_and_fill() {
        assert_eq!(
            Lang::En.plural(1, K::NewMessagesOne, K::NewMessagesMany),
            "1 new message"
        );
        assert_eq!(
            Lang::En.plural(3, K::NewMessagesOne, K::NewMessagesMany),
            "3 new messages"
        );
        assert_eq!(
            Lang::Fr.plural(0, K::UnreadOne, K::UnreadMany),
            "0 message non lu"
        );
        assert_eq!(
            Lang::Fr.f(K::TypingTwo, &[("a", "alice"), ("b", "bob")]),
            "alice et bob écrivent…"
        );
    }
}
